"""Seeded synthetic Helsinki-like city.

The city is a grid of ``width x height`` cells; cell ``i`` has grid position
``(x, y) = divmod(i, height)`` (Mesa's ``(x, y)`` order, C-ordered), ``y = 0`` is the north edge
and the sea lies to the south. Layout, following the seed document's picture of Helsinki:

* a wavy southern coastline with a central peninsula that holds the expensive centre;
* dwelling density falling with distance from the centre, owner-occupied detached suburbs at
  the edges, city-owned social rental spread through the middle ring;
* ``n_renewal_areas`` suburban districts (spread around the centre like Malminkartano-Kannelmaki,
  Malmi, Mellunkyla and Meri-Rastila) with a high social-rental share, lower prices and amenity;
* districts, schools and daycares placed by weighted k-means (schools by dwellings), and each
  school's catchment the set of cells nearest to it (a Voronoi partition).

The numeric shape constants below (coast wave and peninsula, density, tenure, price and
amenity gradients, the middle ring for renewal districts) are assumptions chosen to give
Helsinki's broad pattern; the calibrated shares (tenure, renewal social rental, foreign
share) come from ``CityConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from sim.config import CityConfig
from sim.rng import Streams
from sim.units import KINDS, unit_ids

SOCIAL, PRIVATE, OWNER = 0, 1, 2


@dataclass
class City:
    """Static city arrays (cell-level arrays are indexed by flat cell id)."""

    width: int
    height: int
    cell_km: float
    land: np.ndarray  # bool (n_cells,)
    xy: np.ndarray  # float (n_cells, 2) cell centre in km
    dwellings: np.ndarray  # int (n_cells, 3) dwellings by tenure
    price: np.ndarray  # float (n_cells,) price level (1 = centre)
    amenity: np.ndarray  # float (n_cells,) amenity level in [0, 1]
    district: np.ndarray  # int (n_cells,), -1 on sea
    renewal: np.ndarray  # bool (n_districts,) urban-renewal districts
    catchment_lower: np.ndarray  # int (n_cells,) lower-school index, -1 on sea
    catchment_upper: np.ndarray  # int (n_cells,) upper-school index, -1 on sea
    lower_cells: np.ndarray  # int (n_lower,) cell of each lower school
    upper_cells: np.ndarray  # int (n_upper,)
    lower_emphasis: np.ndarray  # bool (n_lower,) has an emphasised-teaching class
    upper_emphasis: np.ndarray  # bool (n_upper,)
    daycare_cells: np.ndarray  # int (n_daycares,)
    daycare_private: np.ndarray  # bool (n_daycares,)
    centre: int  # cell id of the centre
    # Real geography (cities read by ``sim.geodata``); the synthetic city leaves the defaults.
    crs: str = ""  # map CRS of ``origin`` (e.g. "EPSG:3067"); "" for the synthetic city
    origin: tuple[float, float] = (0.0, 0.0)  # map x of the west edge, y of the north edge (m)
    # Source ids and names by kind ("school", "daycare", "district", "renewal_area"):
    # lists in unit/area order; kinds left out get the synthetic labels (``label``).
    labels: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    # Families the grid counts, housed in their own cells: int (n, 4) of cell, tenure, ses,
    # lang. ``None``: every initial family is placed by the residential choice rule.
    counted_families: np.ndarray | None = None
    # Families the grid does not count (suppressed cells), placed by the choice rule;
    # ``None``: ``CityConfig.n_families`` (the synthetic city).
    n_imputed: int | None = None
    renewal_area: np.ndarray | None = None  # int (n_cells,) renewal polygon index, -1 none
    # Seats from the school and daycare registers (lower units, then upper; daycares), NaN
    # where a register gives none: those units get seats from the initial demand.
    school_capacity: np.ndarray | None = None
    daycare_capacity: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        """Number of grid cells (land and sea)."""
        return self.width * self.height

    @property
    def n_districts(self) -> int:
        """Number of districts."""
        return len(self.renewal)

    @property
    def renewal_cell(self) -> np.ndarray:
        """Bool (n_cells,): the cell lies in an urban-renewal district."""
        return np.where(self.district >= 0, self.renewal[np.maximum(self.district, 0)], False)

    def n_by_choice(self, cfg: CityConfig) -> int:
        """Initial families placed by the residential choice rule (not counted by a grid)."""
        return cfg.n_families if self.n_imputed is None else self.n_imputed

    def initial_families(self, cfg: CityConfig) -> int:
        """Initial families in all: counted by a grid plus placed by the choice rule.

        ``cfg.n_families`` for the synthetic city; levers scale Helsinki-size budgets by it.
        """
        counted = 0 if self.counted_families is None else len(self.counted_families)
        return counted + self.n_by_choice(cfg)

    def map_xy(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of grid positions (cell centres at integers).

        Metres in ``crs`` for a real city; the grid positions themselves for the synthetic one.
        """
        if not self.crs:
            return np.asarray(col, dtype=float), np.asarray(row, dtype=float)
        m = self.cell_km * 1000.0
        col, row = np.asarray(col), np.asarray(row)
        return self.origin[0] + (col + 0.5) * m, self.origin[1] - (row + 0.5) * m

    def label(self, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Source ids and names of the first ``n`` units or areas of a kind.

        Args:
            kind: ``school`` (lower then upper), ``daycare``, ``district``,
                ``renewal_area`` or ``cell`` (blank).
            n: Number wanted; units added later (levers) get the synthetic labels.

        Returns:
            Two string arrays (ids, names) of length ``n``.
        """
        if kind == "cell":  # model cells are resampled: located by ``map_xy``, not named
            return np.full(n, "", dtype=object), np.full(n, "", dtype=object)
        unit = kind in KINDS
        default_ids = unit_ids(kind, range(n)) if unit else [str(i) for i in range(n)]
        default_names = default_ids if unit else [f"{kind} {i}" for i in range(n)]
        ids, names = self.labels.get(kind, ([], []))
        return (np.array(list(ids[:n]) + default_ids[len(ids):], dtype=object),
                np.array(list(names[:n]) + default_names[len(names):], dtype=object))


def _kmeans(
    points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, iters: int = 12
) -> np.ndarray:
    """Weighted Lloyd k-means; returns k centres (deterministic given ``rng``)."""
    p = weights / weights.sum()
    centres = points[rng.choice(len(points), size=k, replace=False, p=p)]
    for _ in range(iters):
        _, lab = cKDTree(centres).query(points)
        wsum = np.bincount(lab, weights=weights, minlength=k)
        for dim in range(points.shape[1]):
            s = np.bincount(lab, weights=weights * points[:, dim], minlength=k)
            centres[:, dim] = np.where(wsum > 0, s / np.maximum(wsum, 1e-12), centres[:, dim])
    return centres


def _snap(centres: np.ndarray, cell_xy: np.ndarray, cell_ids: np.ndarray) -> np.ndarray:
    """Snap centres to distinct cells among ``cell_ids`` (nearest free one)."""
    tree = cKDTree(cell_xy[cell_ids])
    taken: set[int] = set()
    out = np.empty(len(centres), dtype=np.int64)
    kq = min(len(cell_ids), len(centres) + 8)
    for j, c in enumerate(centres):
        _, idx = tree.query(c, k=kq)
        cid = next(int(cell_ids[i]) for i in np.atleast_1d(idx) if int(cell_ids[i]) not in taken)
        taken.add(cid)
        out[j] = cid
    return out


def _voronoi(cell_xy: np.ndarray, land: np.ndarray, site_cells: np.ndarray) -> np.ndarray:
    """Nearest-site label of every land cell; -1 on sea."""
    lab = np.full(len(land), -1, dtype=np.int64)
    _, idx = cKDTree(cell_xy[site_cells]).query(cell_xy[land])
    lab[land] = idx
    return lab


def _pick_spread(cands: np.ndarray, xy: np.ndarray, k: int, rng: np.random.Generator) -> list:
    """Greedy max-min spread choice of ``k`` of ``cands`` (first one random)."""
    chosen = [int(rng.choice(cands))]
    while len(chosen) < min(k, len(cands)):
        rest = [c for c in cands if c not in chosen]
        dmin = [min(np.hypot(*(xy[c] - xy[s])) for s in chosen) for c in rest]
        chosen.append(int(rest[int(np.argmax(dmin))]))
    return chosen


def generate_city(cfg: CityConfig) -> City:
    """Generate the synthetic city for a city config (from its own ``cfg.seed``).

    Args:
        cfg: City configuration (a preset).

    Returns:
        The generated ``City``.
    """
    rng = Streams(cfg.seed).get("city")
    w, h, km = cfg.width, cfg.height, cfg.cell_size_m / 1000.0
    gx, gy = np.meshgrid(np.arange(w), np.arange(h), indexing="ij")
    x, y = gx.ravel().astype(float), gy.ravel().astype(float)
    xy = np.column_stack([x, y]) * km

    # Sea to the south: wavy coast with a central peninsula (the centre).
    xc = 0.5 * w
    phase = rng.uniform(0, 2 * np.pi)
    coast = (
        h * (1 - cfg.sea_share)
        + 0.04 * h * np.sin(2 * np.pi * 3 * x / w + phase)
        + 0.10 * h * np.exp(-(((x - xc) / (0.07 * w)) ** 2))
    )
    land = y < coast
    yc = np.floor(h * (1 - cfg.sea_share) + 0.10 * h) - 2
    centre = int(np.argmin(np.hypot(x - xc, y - yc) + np.where(land, 0, 1e9)))
    d = np.hypot(*(xy - xy[centre]).T)
    d_rel = d / d[land].max()
    sea_xy = xy[~land]
    d_sea = cKDTree(sea_xy).query(xy)[0] if len(sea_xy) else np.full(len(x), 99.0)
    coastal = np.exp(-d_sea / 1.0)

    # Districts: compact k-means regions of land; renewal districts spread in the middle ring.
    land_ids = np.flatnonzero(land)
    dc = _kmeans(xy[land_ids], np.ones(len(land_ids)), cfg.n_districts, rng)
    district = _voronoi(xy, land, _snap(dc, xy, land_ids))
    dist_centroid = np.array([d[district == k].mean() for k in range(cfg.n_districts)])
    lo, hi = np.quantile(dist_centroid, [0.45, 0.92])
    ring = np.flatnonzero((dist_centroid >= lo) & (dist_centroid <= hi))
    cent_xy = np.array([xy[district == k].mean(axis=0) for k in range(cfg.n_districts)])
    renewal = np.zeros(cfg.n_districts, dtype=bool)
    if len(ring) < cfg.n_renewal_areas:  # too few districts in the middle ring: use all
        ring = np.arange(cfg.n_districts)
    if cfg.n_renewal_areas > 0:
        renewal[_pick_spread(ring, cent_xy, cfg.n_renewal_areas, rng)] = True
    ren_cell = np.where(district >= 0, renewal[np.maximum(district, 0)], False)

    # Dwellings: dense centre, lognormal block-to-block variation.
    dens = (0.5 + 2.0 * np.exp(-d_rel / 0.25)) * rng.lognormal(0.0, 0.35, len(x)) * land
    total = int(round(cfg.n_families * cfg.dwellings_per_family))
    per_cell = rng.multinomial(total, dens / dens.sum())
    social = np.clip(cfg.social_share * (0.4 + 1.2 * d_rel), 0, 0.9)
    social = np.where(ren_cell, cfg.renewal_social_share, social)
    # Upper bound at least 0: a renewal social share above 0.95 leaves no owners, not < 0.
    owner = np.clip(cfg.owner_share * (0.3 + 1.4 * d_rel**1.5), 0, np.maximum(0.95 - social, 0))
    owner = np.where(ren_cell, np.minimum(owner, 0.5 * (1 - social)), owner)
    private = 1.0 - social - owner
    probs = np.column_stack([social, private, owner])
    dwellings = np.zeros((len(x), 3), dtype=np.int64)
    for i in np.flatnonzero(per_cell):
        dwellings[i] = rng.multinomial(per_cell[i], probs[i])

    price = 0.35 + 0.65 * np.exp(-d_rel / 0.35) + 0.12 * coastal + rng.normal(0, 0.04, len(x))
    price = np.clip(np.where(ren_cell, 0.8 * price, price), 0.2, 1.4) * land
    amenity = 0.55 * np.exp(-d_rel / 0.4) + 0.3 * coastal + rng.normal(0.15, 0.08, len(x))
    amenity = np.clip(np.where(ren_cell, amenity - 0.15, amenity), 0, 1) * land

    # Schools and daycares placed by population (dwelling-weighted k-means).
    occ = np.flatnonzero(per_cell > 0)
    wts = per_cell[occ].astype(float)

    def place(k: int) -> np.ndarray:
        return _snap(_kmeans(xy[occ], wts, k, rng), xy, occ)

    lower_cells, upper_cells = place(cfg.n_lower_schools), place(cfg.n_upper_schools)
    daycare_cells = place(cfg.n_daycares)
    n_priv = int(round(cfg.private_daycare_share * cfg.n_daycares))
    pw = price[daycare_cells] ** 3  # private daycares cluster where prices are high
    priv_idx = rng.choice(cfg.n_daycares, size=n_priv, replace=False, p=pw / pw.sum())
    daycare_private = np.zeros(cfg.n_daycares, dtype=bool)
    daycare_private[priv_idx] = True

    return City(
        width=w,
        height=h,
        cell_km=km,
        land=land,
        xy=xy,
        dwellings=dwellings,
        price=price,
        amenity=amenity,
        district=district,
        renewal=renewal,
        catchment_lower=_voronoi(xy, land, lower_cells),
        catchment_upper=_voronoi(xy, land, upper_cells),
        lower_cells=lower_cells,
        upper_cells=upper_cells,
        lower_emphasis=rng.random(cfg.n_lower_schools) < cfg.emphasis_school_share,
        upper_emphasis=rng.random(cfg.n_upper_schools) < cfg.emphasis_school_share,
        daycare_cells=daycare_cells,
        daycare_private=daycare_private,
        centre=centre,
    )
