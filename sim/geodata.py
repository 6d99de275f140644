"""Real geography: build the model city from data files, and write a city in those formats.

``build_city`` is the one place that chooses between the synthetic city (``sim.city``) and a
city read from files (``city=from_files``, docs/geography.md). The inputs come in the
formats the data is published in:

* **grid**: Statistics Finland style 250 m population grid, CSV (cell south-west corners
  ``euref_x, euref_y`` or ``xkoord, ykoord``, or a 13-digit ``xyind``; EPSG:3067) or
  GeoPackage (cell squares or points, any CRS). Counts per cell (``GRID_COLUMNS``):
  families with children, or children by age band; optional income or education classes,
  language groups, dwellings by tenure, total population, and the model's own ``price`` and
  ``amenity`` levels. A blank count is a suppressed (protected) cell.
* **catchments** (lower and upper grades), **districts**, **renewal** areas: polygons in
  GeoJSON or GeoPackage with ``id`` and ``name`` (catchments also ``school_id`` and,
  where both networks share a file, ``language``), in EPSG:3879 (ETRS-GK25), EPSG:3067 or
  WGS84.
* **schools** and **daycares**: points in CSV (WGS84 ``lon, lat``, ``easting/northing_etrs_
  tm35fin`` or ``_gk25`` columns as in the City's Service Map, or ``x, y`` with a ``crs``
  column) or GeoJSON; ``id, name``, schools ``level`` (lower, upper, both), ``language``,
  ``capacity``, ``emphasis``; daycares ``provider`` (municipal, private).

The model grid is EPSG:3067, aligned to the data grid and ``cell_size_m`` (a multiple of the
data cells: counts are summed); polygons are rasterised at cell centres. Families counted in
a cell are synthesised there with the cell's status and language mix; families of
suppressed cells are imputed from dwellings (or population) and placed by the model's own
residential choice rule. Every bad input raises one ``ValueError`` naming the file and the
feature or row.

Geometry is needed only while the city is built: the model's space stays Mesa's grid with
property layers, so mesa-geo would add a dependency without a use.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from sim.city import OWNER, PRIVATE, SOCIAL, City, generate_city
from sim.config import CityConfig
from sim.rng import Streams
from sim.units import LEVEL_AGES, LOWER, UPPER

try:
    import geopandas as gpd
    import shapely
    from pyproj import CRS
    from pyproj.exceptions import CRSError
except ImportError:  # optional: the synthetic city needs none of these
    gpd = None

log = logging.getLogger(__name__)

GEO_MISSING = ("city=from_files needs the geo libraries: install the geo extra: "
               "pip install -e '.[geo]'")
MODEL_CRS = "EPSG:3067"  # ETRS-TM35FIN, Statistics Finland's grid
# Children 0-15 per family with children, Helsinki (docs/calibration.md status table, targets.csv);
# converts age-band counts to families when the grid has no family count.
CHILDREN_PER_FAMILY = 1.83
# Catchments may overlap by digitising slivers; more than this share of a cell is an error.
# Assumption.
OVERLAP_CELL_SHARE = 0.05
# Origin (EPSG:3067 west and north edges, m) where a city without a CRS is written: the
# south-west of Helsinki. Assumption.
WRITE_ORIGIN = (372000.0, 6684000.0)

# Accepted grid columns: model quantity -> names in the data (Statistics Finland's Paavo /
# grid database names first). Each tuple of a class quantity lists its classes in order.
GRID_COLUMNS: dict[str, tuple] = {
    "families": ("families", "te_laps"),  # families (households) with children
    "population": ("population", "vaesto", "he_vakiy"),  # total population
    "age_bands": (("he_0_2", "he_3_6", "he_7_12", "he_13_15"),
                  ("children_0_6", "children_7_12", "children_13_15"),
                  ("ika_0_14",)),  # the open 1 km population grid
    # status classes low, middle, high: income classes, education (basic; secondary;
    # tertiary), or the model's own
    "ses": ((("tr_pi_tul",), ("tr_ke_tul",), ("tr_hy_tul",)),
            (("ko_perus",), ("ko_ammat", "ko_yliop"), ("ko_al_kork", "ko_yl_kork")),
            (("ses0",), ("ses1",), ("ses2",))),
    "lang": ("lang_native", "lang_foreign"),  # Finnish/Swedish/Sami speakers, others
    "tenure": ("dw_social", "dw_private", "dw_owner"),  # dwellings: social, private, owner
}
POINT_COLUMNS = (  # CSV coordinate columns and their CRS (Service Map API names)
    (("lon", "lat"), "EPSG:4326"),
    (("longitude", "latitude"), "EPSG:4326"),
    (("easting_etrs_tm35fin", "northing_etrs_tm35fin"), "EPSG:3067"),
    (("easting_etrs_gk25", "northing_etrs_gk25"), "EPSG:3879"),
)
LEVELS = {"lower": (0,), "upper": (1,), "both": (0, 1), "1-6": (0,), "7-9": (1,), "1-9": (0, 1)}


def build_city(cfg: CityConfig) -> City:
    """The model city of a config: read from files (``from_files``) or synthetic.

    Args:
        cfg: City configuration.

    Returns:
        The ``City``.

    Raises:
        ValueError: A bad input file (one line naming the file and feature or row).
    """
    if cfg.preset == "from_files":
        return read_city(cfg)
    return generate_city(cfg)


def require_geo() -> None:
    """Raise the one-line install hint if the geo extra is missing."""
    if gpd is None:
        raise ValueError(GEO_MISSING)


# ---------------------------------------------------------------------------- reading files
def _bad(path: str | Path, where: str, what: str) -> ValueError:
    """One-line input error naming the file, the feature or row, and the problem."""
    return ValueError(f"{path}: {where}: {what}" if where else f"{path}: {what}")


def _row(path: str | Path, i: int) -> str:
    """Where data row ``i`` is: its line in a CSV file (header on line 1), else its feature."""
    return f"line {i + 2}" if str(path).lower().endswith(".csv") else f"feature {i}"


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise _bad(path, "", "no such file")
    if p.stat().st_size == 0:
        raise _bad(path, "", "empty file")
    return p


def _parse_crs(path: str | Path, value: object) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise _bad(path, "", f"unknown CRS {value!r}") from exc


def _read_geojson(path: Path) -> gpd.GeoDataFrame:
    """GeoJSON with its CRS: a named ``crs`` member, or RFC 7946 WGS84 when it has none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad(path, "", f"not valid GeoJSON ({exc})") from exc
    feats = data.get("features") if isinstance(data, dict) else None
    if not feats:
        raise _bad(path, "", "empty file (no features)")
    member = data.get("crs")
    if member is not None:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        crs = _parse_crs(path, name)
    else:
        crs = CRS.from_epsg(4326)
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or not f.get("geometry"):
            raise _bad(path, f"feature {i}", "has no geometry")
    gdf = gpd.GeoDataFrame.from_features(feats, crs=crs)
    if member is None:
        minx, miny, maxx, maxy = gdf.total_bounds
        if min(minx, miny) < -180 or maxx > 180 or maxy > 90:
            raise _bad(path, "", "missing CRS: no 'crs' member and the coordinates are not "
                                 "WGS84 longitude/latitude")
    return gdf


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise _bad(path, "", "empty file") from exc
    if df.empty:
        raise _bad(path, "", "empty file (no rows)")
    return df


def read_layer(path: str | Path) -> gpd.GeoDataFrame:
    """Read a GeoJSON, GeoPackage or point CSV file as a GeoDataFrame in its own CRS.

    Args:
        path: The file.

    Returns:
        The features, properties as columns (CSV: all strings).

    Raises:
        ValueError: Missing, empty or unreadable file; missing or unknown CRS.
    """
    require_geo()
    p = _check_file(path)
    suffix = p.suffix.lower()
    if suffix in (".geojson", ".json"):
        return _read_geojson(p)
    if suffix == ".gpkg":
        try:
            gdf = gpd.read_file(p)
        except Exception as exc:  # pyogrio raises its own error types
            raise _bad(path, "", f"not a readable GeoPackage ({exc})") from exc
        if gdf.empty:
            raise _bad(path, "", "empty file (no features)")
        if gdf.crs is None:
            raise _bad(path, "", "missing CRS")
        return gdf
    if suffix == ".csv":
        df = _read_csv(p)
        found = [(cols, crs) for cols, crs in POINT_COLUMNS if set(cols) <= set(df.columns)]
        if found:
            cols, crs = found[0]
        else:
            if not {"x", "y"} <= set(df.columns):
                raise _bad(path, "", "no coordinate columns (lon, lat; easting_etrs_tm35fin, "
                                     "northing_etrs_tm35fin; or x, y with crs)")
            if "crs" not in df.columns:
                raise _bad(path, "", "missing CRS: columns x, y need a crs column")
            cols, crs = ("x", "y"), df["crs"].iloc[0]
            if (df["crs"] != crs).any():
                raise _bad(path, _row(path, int(np.argmax(df['crs'] != crs))), "mixed CRS values")
        xy = np.column_stack([_numbers(path, df, c, allow_negative=True) for c in cols])
        bad = np.flatnonzero(np.isnan(xy).any(axis=1))
        if len(bad):
            raise _bad(path, _row(path, bad[0]), "missing coordinates")
        return gpd.GeoDataFrame(df, geometry=shapely.points(xy), crs=_parse_crs(path, crs))
    raise _bad(path, "", "unsupported format (use .csv, .geojson or .gpkg)")


def _numbers(path: str | Path, df: pd.DataFrame, col: str, allow_negative: bool = False
             ) -> np.ndarray:
    """A numeric column; blanks are NaN (suppressed), anything else non-numeric is an error."""
    raw = df[col]
    if raw.dtype.kind in "if":
        vals = raw.to_numpy(dtype=float)
    else:
        text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
        vals = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(np.isnan(vals) & (text != "").to_numpy())
        if len(bad):
            raise _bad(path, _row(path, bad[0]), f"{col}={raw.iloc[bad[0]]!r} is not a number")
    if not allow_negative:
        neg = np.flatnonzero(vals < 0)
        if len(neg):
            raise _bad(path, _row(path, neg[0]), f"{col}={vals[neg[0]]:g} is negative")
    return vals


def _prop(gdf: gpd.GeoDataFrame, names: tuple[str, ...], default: str | None = None
          ) -> pd.Series | None:
    """The first present property of ``names`` as strings (``default`` where blank)."""
    for n in names:
        if n in gdf.columns:
            s = gdf[n].astype(object).where(gdf[n].notna(), "").astype(str).str.strip()
            return s if default is None else s.where(s != "", default)
    return None


LANGUAGES = {"fi": "fi", "suomi": "fi", "finnish": "fi", "sv": "sv", "ruotsi": "sv",
             "swedish": "sv", "svenska": "sv"}


def _of_language(path: str | Path, gdf: gpd.GeoDataFrame, language: str
                 ) -> gpd.GeoDataFrame:
    """The features of one language network (all of them if there is no language column).

    Raises:
        ValueError: An unknown language, or none of the features in ``language``.
    """
    lang = _prop(gdf, ("language", "kieli"))
    if lang is None:
        return gdf
    code = lang.str.lower().map(LANGUAGES)
    if code.isna().any():
        i = int(np.argmax(code.isna().to_numpy()))
        raise _bad(path, _feature(gdf, i), f"language={lang.iloc[i]!r} is not fi or sv")
    gdf = gdf[(code == language).to_numpy()]
    if gdf.empty:
        raise _bad(path, "", f"no features with language={language!r}")
    return gdf.reset_index(drop=True)


def _with_ids(gdf: gpd.GeoDataFrame, path: str | Path, required: bool) -> gpd.GeoDataFrame:
    """``id``, ``name`` and ``where`` (the line or feature in the file) columns.

    Ids default to the feature number, names to ids.

    Helsinki's layers carry a database ``id`` beside the real identifier ``tunnus``: the
    latter wins.
    """
    ids = _prop(gdf, ("tunnus", "id"))
    if ids is None and required:
        raise _bad(path, "", "no id column")
    if ids is None:
        ids = pd.Series([str(i) for i in range(len(gdf))], index=gdf.index)
    names = _prop(gdf, ("name", "nimi", "nimi_fi"))
    return gdf.assign(id=ids, name=ids if names is None else names.where(names != "", ids),
                      where=[_row(path, i) for i in range(len(gdf))])  # for errors


def _feature(gdf: gpd.GeoDataFrame, i: int) -> str:
    """How row ``i`` is named in errors: its line or feature in the file, id and name."""
    parts = [gdf["where"].iloc[i] if "where" in gdf.columns else f"feature {i}"]
    for key in ("id", "name"):
        if key in gdf.columns and pd.notna(gdf[key].iloc[i]):
            parts.append(f"{key}={gdf[key].iloc[i]}")
    return " ".join(parts)


def read_polygons(path: str | Path, language: str | None = None) -> gpd.GeoDataFrame:
    """Polygon layer in EPSG:3067 with ``id`` and ``name`` (and the other properties).

    Args:
        path: GeoJSON or GeoPackage file.
        language: Keep only features of this ``language`` (``fi``/``sv``), if the file has one.

    Raises:
        ValueError: Bad file, or a feature that is not a valid polygon.
    """
    gdf = read_layer(path)
    gdf = _with_ids(gdf, path, required=False)
    for i, g in enumerate(gdf.geometry):
        if g is None or g.geom_type not in ("Polygon", "MultiPolygon"):
            raise _bad(path, _feature(gdf, i), "is not a polygon")
        if not g.is_valid:
            raise _bad(path, _feature(gdf, i),
                       f"is not a valid polygon ({shapely.is_valid_reason(g)})")
    if language is not None:
        gdf = _of_language(path, gdf, language)
    return gdf.to_crs(MODEL_CRS)


def check_overlaps(path: str | Path, gdf: gpd.GeoDataFrame, tol_m2: float) -> None:
    """Raise if two features overlap by more than ``tol_m2`` square metres."""
    geoms = gdf.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    for a, b in zip(left[keep], right[keep], strict=True):
        area = shapely.intersection(geoms[a], geoms[b]).area
        if area > tol_m2:
            raise _bad(path, _feature(gdf, a),
                       f"overlaps {_feature(gdf, b)} by {area:.0f} m2")


def rasterise(gdf: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index of the feature containing each point (cell centres), -1 where none."""
    lab = np.full(len(x), -1, dtype=np.int64)
    pts, feats = shapely.STRtree(gdf.geometry.to_numpy()).query(
        shapely.points(x, y), predicate="within")
    lab[pts] = feats  # overlaps were rejected before, so a point lies in at most one feature
    return lab


# ---------------------------------------------------------------------------- the grid
@dataclass
class _Grid:
    """Grid rows in EPSG:3067: cell centres, data cell size and per-row counts."""

    x: np.ndarray
    y: np.ndarray
    size: float
    families: np.ndarray  # NaN: suppressed
    population: np.ndarray | None
    ses: np.ndarray | None  # (n, 3)
    lang: np.ndarray | None  # (n, 2)
    tenure: np.ndarray | None  # (n, 3) dwellings
    price: np.ndarray | None
    amenity: np.ndarray | None


def _class_columns(path: str | Path, df: pd.DataFrame, options: tuple) -> np.ndarray | None:
    """Sum of the columns of each class, for the first option whose columns are all there."""
    for classes in options:
        if all(c in df.columns for cls in classes for c in cls):
            return np.column_stack([sum(_numbers(path, df, c) for c in cls) for cls in classes])
    return None


def read_grid(path: str | Path, cell_size_m: float) -> _Grid:
    """Read the population grid (CSV or GeoPackage) into EPSG:3067 cell centres and counts.

    Raises:
        ValueError: Bad file, missing columns, negative or non-numeric counts.
    """
    require_geo()
    p = _check_file(path)
    if p.suffix.lower() == ".csv":
        df = _read_csv(p)
        corner = next((c for c in (("euref_x", "euref_y"), ("xkoord", "ykoord"))
                       if set(c) <= set(df.columns)), None)
        if corner is not None:
            x0 = _numbers(path, df, corner[0], allow_negative=True)
            y0 = _numbers(path, df, corner[1], allow_negative=True)
        elif "xyind" in df.columns:
            ids = df["xyind"].str.strip()
            bad = np.flatnonzero(~ids.str.fullmatch(r"\d{13}").to_numpy())
            if len(bad):
                raise _bad(path, _row(path, bad[0]), f"xyind={ids.iloc[bad[0]]!r} is not a "
                                                  "13-digit grid id")
            x0, y0 = ids.str[:6].astype(float).to_numpy(), ids.str[6:].astype(float).to_numpy()
        else:
            raise _bad(path, "", "no cell coordinates (euref_x, euref_y; xkoord, ykoord; or "
                                 "xyind, EPSG:3067)")
        missing = np.flatnonzero(np.isnan(x0) | np.isnan(y0))
        if len(missing):
            raise _bad(path, _row(path, missing[0]), "missing cell coordinates")
        steps = np.concatenate([np.diff(np.unique(x0)), np.diff(np.unique(y0))])
        # The data cell size: the smallest spacing of the corners (one row: the model's).
        size = float(steps[steps > 0].min()) if (steps > 0).any() else cell_size_m
        x, y = x0 + size / 2, y0 + size / 2
    else:
        df = read_layer(p).to_crs(MODEL_CRS)
        geoms = df.geometry.to_numpy()
        polys = np.isin(shapely.get_type_id(geoms), (3, 6))
        # Reprojected squares are squares to within millimetres: round the size to cm.
        size = round(float(np.sqrt(np.median(shapely.area(geoms[polys])))), 2) if (
            polys.any()) else cell_size_m
        c = shapely.centroid(geoms)
        x, y = shapely.get_x(c), shapely.get_y(c)
        empty = np.flatnonzero(np.isnan(x) | np.isnan(y))
        if len(empty):
            raise _bad(path, _row(path, empty[0]), "has no geometry")
        df = pd.DataFrame(df.drop(columns="geometry"))
    fam_col = next((c for c in GRID_COLUMNS["families"] if c in df.columns), None)
    if fam_col is not None:
        families = _numbers(path, df, fam_col)
    else:
        bands = next((b for b in GRID_COLUMNS["age_bands"] if all(c in df for c in b)), None)
        if bands is None:
            raise _bad(path, "", "no family count (families, te_laps) or children by age "
                                 "band (he_0_2, he_3_6, he_7_12, he_13_15; ika_0_14)")
        families = np.round(sum(_numbers(path, df, c) for c in bands) / CHILDREN_PER_FAMILY)
    pop_col = next((c for c in GRID_COLUMNS["population"] if c in df.columns), None)

    def optional(cols: tuple[str, ...]) -> np.ndarray | None:
        return _class_columns(path, df, (tuple((c,) for c in cols),))

    return _Grid(
        x=x, y=y, size=size, families=families,
        population=_numbers(path, df, pop_col) if pop_col else None,
        ses=_class_columns(path, df, GRID_COLUMNS["ses"]),
        lang=optional(GRID_COLUMNS["lang"]),
        tenure=optional(GRID_COLUMNS["tenure"]),
        price=_numbers(path, df, "price") if "price" in df.columns else None,
        amenity=_numbers(path, df, "amenity") if "amenity" in df.columns else None,
    )


# ---------------------------------------------------------------------------- units
@dataclass
class _Units:
    """Schools or daycares: ids, names, map positions and attributes (file order)."""

    ids: list[str]
    names: list[str]
    x: np.ndarray
    y: np.ndarray
    levels: list[tuple[int, ...]]  # schools: levels served
    flag: np.ndarray  # schools: emphasised class; daycares: private
    capacity: np.ndarray  # seats from the register, NaN where not given


def _points(path: str | Path) -> gpd.GeoDataFrame:
    """Point layer with unique ``id`` and ``name``."""
    gdf = read_layer(path)
    for i, g in enumerate(gdf.geometry):
        if g is None or g.geom_type != "Point":
            raise _bad(path, _feature(gdf, i), "is not a point")
    gdf = _with_ids(gdf, path, required=True)
    dup = gdf["id"].duplicated().to_numpy()
    if dup.any():
        raise _bad(path, _feature(gdf, int(np.argmax(dup))), "duplicate id")
    return gdf


def _capacity(path: str | Path, gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Seats per unit from a ``capacity`` column (NaN where blank or absent).

    Raises:
        ValueError: A capacity that is not a whole number of seats >= 1.
    """
    cap = _prop(gdf, ("capacity", "kapasiteetti"))
    if cap is None:
        return np.full(len(gdf), np.nan)
    num = pd.to_numeric(cap.where(cap != ""), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero((cap != "").to_numpy() & ~(num >= 1) | (num % 1 > 0))
    if len(bad):
        raise _bad(path, _feature(gdf, bad[0]),
                   f"capacity={cap.iloc[bad[0]]!r} is not a whole number of seats >= 1")
    return num


def _units(path: str | Path, gdf: gpd.GeoDataFrame, levels: list,
           flag: np.ndarray) -> _Units:
    pts = gdf.geometry.to_crs(MODEL_CRS).to_numpy()
    return _Units(ids=list(gdf["id"]), names=list(gdf["name"]), x=shapely.get_x(pts),
                  y=shapely.get_y(pts), levels=levels, flag=flag,
                  capacity=_capacity(path, gdf))


def read_schools(path: str | Path, language: str) -> _Units:
    """Schools of one language network as points in EPSG:3067.

    Raises:
        ValueError: Bad file, duplicate id, unknown level or language.
    """
    gdf = _of_language(path, _points(path), language)
    level = _prop(gdf, ("level", "aste"))
    if level is None:
        raise _bad(path, "", "no level column (lower, upper, both)")
    bad = np.flatnonzero(~level.str.lower().isin(list(LEVELS)).to_numpy())
    if len(bad):
        raise _bad(path, _feature(gdf, bad[0]),
                   f"level={level.iloc[bad[0]]!r} is not one of {sorted(LEVELS)}")
    emph = _prop(gdf, ("emphasis", "painotus"), default="")
    flag = (np.zeros(len(gdf), dtype=bool) if emph is None
            else ~emph.str.lower().isin(["", "0", "false", "no"]).to_numpy())
    return _units(path, gdf, [LEVELS[v] for v in level.str.lower()], flag)


def read_daycares(path: str | Path) -> _Units:
    """Daycares as points in EPSG:3067 (``provider`` municipal, the default, or private).

    Raises:
        ValueError: Bad file, duplicate id, unknown provider.
    """
    gdf = _points(path)
    prov = _prop(gdf, ("provider", "yllapitaja"), default="municipal")
    if prov is None:
        return _units(path, gdf, [()] * len(gdf), np.zeros(len(gdf), dtype=bool))
    bad = np.flatnonzero(~prov.str.lower().isin(["municipal", "private"]).to_numpy())
    if len(bad):
        raise _bad(path, _feature(gdf, bad[0]),
                   f"provider={prov.iloc[bad[0]]!r} is not municipal or private")
    return _units(path, gdf, [()] * len(gdf), (prov.str.lower() == "private").to_numpy())


# ---------------------------------------------------------------------------- the city
def _apportion(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split integer totals (n,) by weights (n, k) by largest remainders (deterministic).

    Multiplies before dividing, so integer weights that sum to the total come back exactly.
    """
    raw = total[:, None] * weights / weights.sum(1, keepdims=True)
    out = np.floor(raw).astype(np.int64)
    rest = (total - out.sum(1)).astype(np.int64)
    order = np.argsort(-(raw - out), axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable")
    return out + (ranks < rest[:, None])


def _ipf(lang_p: np.ndarray, ses_p: np.ndarray, base: np.ndarray, iters: int = 30
         ) -> np.ndarray:
    """Joint lang x ses shares (n, 2, 3) with the given margins, closest to ``base`` (2, 3)."""
    joint = np.broadcast_to(base, (len(lang_p), 2, 3)).copy()
    for _ in range(iters):
        joint *= (lang_p / np.maximum(joint.sum(2), 1e-12))[:, :, None]
        joint *= (ses_p / np.maximum(joint.sum(1), 1e-12))[:, None, :]
    return joint / joint.sum((1, 2), keepdims=True)


def _families_and_dwellings(cfg: CityConfig, grid: _Grid, ren_row: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, int]:
    """Counted families, family dwellings by tenure and imputed families, per grid row.

    The model's dwellings are family dwellings: ``dwellings_per_family`` per family, split by
    the row's tenure mix (the config's shares where the grid has none). Families of
    suppressed rows are estimated from the row's dwellings (at the counted rows' families
    per dwelling; with no counted rows, the dwellings are taken as family dwellings) or
    population (at the counted rows' families per person).

    Raises:
        ValueError: A suppressed row with neither dwellings nor population.
    """
    fam = grid.families
    suppressed = np.isnan(fam)
    dpf = cfg.dwellings_per_family
    shares = np.tile([cfg.social_share, 1 - cfg.social_share - cfg.owner_share,
                      cfg.owner_share], (len(fam), 1))
    ren_owner = min(cfg.owner_share, 0.5 * (1 - cfg.renewal_social_share))
    shares[ren_row] = [cfg.renewal_social_share, 1 - cfg.renewal_social_share - ren_owner,
                       ren_owner]
    est = fam.copy()
    dw_total = np.full(len(fam), np.nan)
    if grid.tenure is not None:
        dw_total = grid.tenure.sum(1)
        has = dw_total > 0
        shares[has] = grid.tenure[has]  # weights; _apportion normalises
        both = ~suppressed & has
        per_dwelling = fam[both].sum() / dw_total[both].sum() if both.any() else 1.0 / dpf
        est[suppressed] = dw_total[suppressed] * per_dwelling
    if grid.population is not None:
        known = ~suppressed & (grid.population > 0)
        per_person = fam[known].sum() / max(grid.population[known].sum(), 1.0)
        est = np.where(np.isnan(est), grid.population * per_person, est)
    lost = np.flatnonzero(np.isnan(est))
    if len(lost):
        raise _bad(cfg.grid, _row(cfg.grid, lost[0]), "families are suppressed and there are no "
                   "dwellings or population to impute them from")
    dwell = _apportion(np.round(est * dpf).astype(np.int64), shares)
    counted = np.where(suppressed, 0, fam).astype(np.int64)
    return counted, dwell, int(round(est[suppressed].sum()))


def _layout(cfg: CityConfig, grid: _Grid, districts: gpd.GeoDataFrame
            ) -> tuple[float, float, int, int]:
    """Model grid origin (west, north edges) and size, aligned to the data grid."""
    m = cfg.cell_size_m
    k = m / grid.size
    if abs(k - round(k)) > 1e-9:
        raise ValueError(f"config error: city.cell_size_m={m:g} is not allowed; expected a "
                         f"multiple of the grid's {grid.size:g} m cells")
    # The data grid's lattice (cm: reprojected cells are off by fractions of a millimetre).
    ax, ay = (round(v - grid.size / 2, 2) % m for v in (grid.x[0], grid.y[0]))
    minx, miny, maxx, maxy = np.round(districts.total_bounds, 2)
    minx, miny = min(minx, grid.x.min()), min(miny, grid.y.min())
    maxx, maxy = max(maxx, grid.x.max()), max(maxy, grid.y.max())
    west = math.floor((minx - ax) / m) * m + ax
    north = math.ceil((maxy - ay) / m) * m + ay
    return west, north, math.ceil((maxx - west) / m), math.ceil((north - miny) / m)


@dataclass
class _Raster:
    """The model grid in EPSG:3067 and where the grid rows fall in it."""

    west: float  # west edge (m)
    north: float  # north edge (m)
    width: int
    height: int
    m: float  # cell size (m)
    cx: np.ndarray  # cell centres (n_cells,)
    cy: np.ndarray
    rcell: np.ndarray  # model cell of each grid row

    @classmethod
    def of(cls, cfg: CityConfig, grid: _Grid, districts: gpd.GeoDataFrame) -> _Raster:
        west, north, w, h = _layout(cfg, grid, districts)
        m = cfg.cell_size_m
        col, row = np.divmod(np.arange(w * h), h)
        rcell = (((grid.x - west) // m).astype(np.int64) * h
                 + ((north - grid.y) // m).astype(np.int64))
        return cls(west, north, w, h, m, west + (col + 0.5) * m, north - (row + 0.5) * m,
                   rcell)

    @property
    def n_cells(self) -> int:
        return self.width * self.height

    def where(self, path: str, grid: _Grid, i: int) -> str:
        """Grid row ``i`` in an error message: its line or feature and its cell centre."""
        return f"{_row(path, i)} (cell centre {grid.x[i]:.0f}, {grid.y[i]:.0f})"

    def per_cell(self, a: np.ndarray) -> np.ndarray:
        """Row values (n_rows, k) summed into model cells (n_cells, k); NaN counts as 0."""
        out = np.zeros((self.n_cells, a.shape[1]))
        np.add.at(out, self.rcell, np.nan_to_num(a))
        return out


def _rasterise_districts(cfg: CityConfig, grid: _Grid, r: _Raster,
                         districts: gpd.GeoDataFrame) -> np.ndarray:
    """District of each model cell (-1 off land); every populated grid row must have one."""
    district = rasterise(districts, r.cx, r.cy)
    row_district = rasterise(districts, grid.x, grid.y)
    populated = np.isnan(grid.families) | (np.nan_to_num(grid.families) > 0)
    for a in (grid.population, grid.tenure):
        if a is not None:
            populated |= np.nan_to_num(a.reshape(len(r.rcell), -1)).sum(1) > 0
    outside = np.flatnonzero(populated & (row_district < 0))
    if len(outside):
        raise _bad(cfg.grid, r.where(cfg.grid, grid, outside[0]),
                   f"lies outside every district of {cfg.districts}")
    # A coarser model cell whose centre misses the districts takes its rows' district.
    fill = (district[r.rcell] < 0) & (row_district >= 0)
    district[r.rcell[fill]] = row_district[fill]
    return district


def _rasterise_renewal(cfg: CityConfig, r: _Raster, district: np.ndarray, n_districts: int
                       ) -> tuple[np.ndarray, np.ndarray | None, gpd.GeoDataFrame | None]:
    """Renewal districts (most of their cells in a renewal polygon) and polygon per cell."""
    if not cfg.renewal:
        return np.zeros(n_districts, dtype=bool), None, None
    ren = read_polygons(cfg.renewal)
    land = district >= 0
    area = np.where(land, rasterise(ren, r.cx, r.cy), -1)
    inside = np.bincount(district[land], weights=area[land] >= 0, minlength=n_districts)
    cells = np.maximum(np.bincount(district[land], minlength=n_districts), 1)
    return inside / cells >= 0.5, area, ren


def _rasterise_catchments(cfg: CityConfig, level: int, schools: _Units, r: _Raster,
                          land: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A level's catchment label per cell (k-th school of the level) and its schools.

    Raises:
        ValueError: Overlapping catchments, or a ``school_id`` not among the schools.
    """
    key, name = (("catchments_lower", "lower"), ("catchments_upper", "upper"))[level]
    path = getattr(cfg, key)
    idx = np.array([i for i, lv in enumerate(schools.levels) if level in lv], dtype=np.int64)
    if not len(idx):
        raise _bad(cfg.schools, "", f"no {name}-grade schools")
    poly = read_polygons(path, cfg.school_language)
    check_overlaps(path, poly, OVERLAP_CELL_SHARE * r.m * r.m)
    sid = _prop(poly, ("school_id", "koulu_id"))
    if sid is None:  # HRI's areas are named after their school
        by_name = {schools.names[i].lower(): schools.ids[i] for i in idx}
        sid = poly["name"].str.lower().map(by_name)
        if sid.isna().any():
            i = int(np.argmax(sid.isna().to_numpy()))
            raise _bad(path, _feature(poly, i), f"has no school_id and its name is not a "
                       f"{name}-grade school's name in {cfg.schools}")
    k_of = {schools.ids[i]: k for k, i in enumerate(idx)}
    for i, s in enumerate(sid):
        if s not in k_of:
            raise _bad(path, _feature(poly, i),
                       f"school_id={s!r} is not a {name}-grade school in {cfg.schools}")
    lab = rasterise(poly, r.cx, r.cy)
    return np.where((lab >= 0) & land, sid.map(k_of).to_numpy()[np.maximum(lab, 0)], -1), idx


def _close_gaps(path: str, cfg: CityConfig, grid: _Grid, r: _Raster, lab: np.ndarray,
                land: np.ndarray, dwellings: np.ndarray) -> None:
    """Give uninhabited land cells outside every catchment (parks, fields) the nearest one.

    Raises:
        ValueError: A land cell with dwellings (families) outside every catchment.
    """
    orphan = np.flatnonzero(land & (lab < 0) & (dwellings.sum(1) > 0))
    if len(orphan):
        i = int(np.flatnonzero(r.rcell == orphan[0])[0])
        raise _bad(path, "", f"no catchment covers {cfg.grid} {r.where(cfg.grid, grid, i)}, "
                             "which has families or dwellings")
    gap, done = land & (lab < 0), np.flatnonzero(lab >= 0)
    if gap.any():
        near = cKDTree(np.column_stack([r.cx[done], r.cy[done]])).query(
            np.column_stack([r.cx[gap], r.cy[gap]]))[1]
        lab[gap] = lab[done[near]]


def _shares(r: _Raster, a: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    """Class shares per model cell from grid counts, ``default`` where there are none."""
    out = np.tile(default, (r.n_cells, 1))
    if a is not None:
        s = r.per_cell(a)
        tot = s.sum(1)
        out[tot > 0] = s[tot > 0] / tot[tot > 0, None]
    return out


def _config_mix(cfg: CityConfig) -> np.ndarray:
    """The config's joint language x status shares (2, 3) of families."""
    return np.array([cfg.ses_shares_native, cfg.ses_shares_foreign]) * np.array(
        [[1 - cfg.foreign_share], [cfg.foreign_share]])


def _synthesise(cfg: CityConfig, r: _Raster, counted: np.ndarray, lang_p: np.ndarray,
                ses_p: np.ndarray, dwellings: np.ndarray) -> np.ndarray:
    """The counted families: int (n, 4) of cell, tenure, ses, lang, ordered by cell.

    Each cell's families are drawn (stream ``city_families`` of ``city.seed``) from the
    joint language x status mix that matches the cell's margins and is closest to the
    config's shares. Within a cell, higher status holds the owner-occupied dwellings first,
    then private rental.
    """
    cell_fam = np.bincount(r.rcell, weights=counted, minlength=r.n_cells).astype(np.int64)
    base = _config_mix(cfg)
    occupied = np.flatnonzero(cell_fam > 0)
    joint = _ipf(lang_p[occupied], ses_p[occupied], base).reshape(-1, 6)
    draws = Streams(cfg.seed).get("city_families").multinomial(cell_fam[occupied], joint)
    cell = np.repeat(np.repeat(occupied, 6), draws.ravel())
    cls = np.tile(np.arange(6), len(occupied)).repeat(draws.ravel())
    lang, ses = cls // 3, cls % 3
    order = np.lexsort((-ses, cell))
    cell, ses, lang = cell[order], ses[order], lang[order]
    rank = np.arange(len(cell)) - np.searchsorted(cell, cell)
    stock = dwellings[cell][:, ::-1].cumsum(1)  # owner, owner + private, all
    tenure = np.array([OWNER, PRIVATE, SOCIAL])[(rank[:, None] >= stock).sum(1)]
    return np.column_stack([cell, tenure, ses, lang])


def _level(r: _Raster, a: np.ndarray | None, derived: np.ndarray, land: np.ndarray
           ) -> np.ndarray:
    """Mean per model cell of a grid level column (price, amenity), ``derived`` elsewhere."""
    if a is None:
        return derived * land
    ok = ~np.isnan(a)
    n = np.bincount(r.rcell[ok], minlength=r.n_cells)
    s = np.bincount(r.rcell[ok], weights=a[ok], minlength=r.n_cells)
    return np.where(n > 0, s / np.maximum(n, 1), derived) * land


def read_city(cfg: CityConfig) -> City:
    """Build the model city from the files named in ``cfg`` (``preset=from_files``).

    Args:
        cfg: City configuration with the file keys set.

    Returns:
        The ``City`` (EPSG:3067 origin, source ids and names, counted families).

    Raises:
        ValueError: One line naming the bad file and feature or row.
    """
    require_geo()
    districts = read_polygons(cfg.districts)
    check_overlaps(cfg.districts, districts, OVERLAP_CELL_SHARE * cfg.cell_size_m ** 2)
    grid = read_grid(cfg.grid, cfg.cell_size_m)
    r = _Raster.of(cfg, grid, districts)
    district = _rasterise_districts(cfg, grid, r, districts)
    land = district >= 0
    renewal, renewal_area, ren = _rasterise_renewal(cfg, r, district, len(districts))

    schools = read_schools(cfg.schools, cfg.school_language)
    daycares = read_daycares(cfg.daycares)
    (lab_l, lower), (lab_u, upper) = (_rasterise_catchments(cfg, lev, schools, r, land)
                                      for lev in (0, 1))

    counted, dwell, n_imputed = _families_and_dwellings(
        cfg, grid, renewal[np.maximum(district[r.rcell], 0)])
    dwellings = r.per_cell(dwell).astype(np.int64)
    for path, lab in ((cfg.catchments_lower, lab_l), (cfg.catchments_upper, lab_u)):
        _close_gaps(path, cfg, grid, r, lab, land, dwellings)

    base = _config_mix(cfg)
    lang_p, ses_p = _shares(r, grid.lang, base.sum(1)), _shares(r, grid.ses, base.sum(0))
    families = _synthesise(cfg, r, counted, lang_p, ses_p, dwellings)

    # Assumption: without price and amenity columns, price follows the status mix (cell
    # and district averaged) and amenity is middling, lower in renewal districts (as in the
    # synthetic city).
    mean_ses = ses_p @ np.arange(3.0)
    d = np.maximum(district, 0)
    dist_ses = (np.bincount(d[land], weights=mean_ses[land], minlength=len(districts))
                / np.maximum(np.bincount(d[land], minlength=len(districts)), 1))
    price = _level(r, grid.price, 0.3 + 0.25 * (mean_ses + dist_ses[d]), land)
    amenity = _level(r, grid.amenity, 0.5 - 0.15 * (land & renewal[d]), land)

    land_ids = np.flatnonzero(land)
    tree = cKDTree(np.column_stack([r.cx[land_ids], r.cy[land_ids]]))

    def snap(units: _Units) -> np.ndarray:
        """The land cell nearest to each unit's point."""
        return land_ids[tree.query(np.column_stack([units.x, units.y]))[1]]

    school_cell, order = snap(schools), np.concatenate([lower, upper])
    labels = {"district": (list(districts["id"]), list(districts["name"])),
              "school": ([schools.ids[i] for i in order], [schools.names[i] for i in order]),
              "daycare": (daycares.ids, daycares.names)}
    if ren is not None:
        labels["renewal_area"] = (list(ren["id"]), list(ren["name"]))
    log.info("city from files: %d x %d cells of %g m, %d land, %d counted + %d imputed "
             "families, %d + %d schools, %d daycares", r.width, r.height, r.m, land.sum(),
             len(families), n_imputed, len(lower), len(upper), len(daycares.ids))
    km = r.m / 1000.0
    return City(
        width=r.width, height=r.height, cell_km=km, land=land,
        xy=np.column_stack(np.divmod(np.arange(r.n_cells), r.height)).astype(float) * km,
        dwellings=dwellings, price=price, amenity=amenity, district=district,
        renewal=renewal, catchment_lower=lab_l, catchment_upper=lab_u,
        lower_cells=school_cell[lower], upper_cells=school_cell[upper],
        lower_emphasis=schools.flag[lower], upper_emphasis=schools.flag[upper],
        daycare_cells=snap(daycares), daycare_private=daycares.flag,
        school_capacity=np.concatenate([_level_seats(schools, lower, LOWER),
                                        _level_seats(schools, upper, UPPER)]),
        daycare_capacity=daycares.capacity,
        centre=int(np.argmax(price)), crs=MODEL_CRS, origin=(r.west, r.north), labels=labels,
        counted_families=families, n_imputed=n_imputed, renewal_area=renewal_area,
    )


def _level_seats(schools: _Units, idx: np.ndarray, level: int) -> np.ndarray:
    """Register seats of the ``idx`` schools' units of one level (NaN where not given).

    A school with both levels has one unit per level; its seats are split by the number of
    grades (6 lower, 3 upper).
    """
    both = np.array([len(schools.levels[i]) > 1 for i in idx], dtype=bool)
    grades = [hi - lo + 1 for lo, hi in LEVEL_AGES]
    share = np.where(both, grades[level] / sum(grades), 1.0)
    return np.round(schools.capacity[idx] * share)


# ---------------------------------------------------------------------------- writing files
def _cell_boxes(city: City, west: float, north: float) -> np.ndarray:
    """Every cell's square in EPSG:3067."""
    m = city.cell_km * 1000.0
    col, row = np.divmod(np.arange(city.n_cells), city.height)
    x0, y1 = west + col * m, north - row * m
    return shapely.box(x0, y1 - m, x0 + m, y1)


def _polygons(boxes: np.ndarray, lab: np.ndarray, n: int, props: dict[str, list],
              crs: str) -> gpd.GeoDataFrame:
    """Union of the cells of each label 0..n-1 as one feature each, with properties."""
    geoms = [shapely.union_all(boxes[lab == k]) for k in range(n)]
    return gpd.GeoDataFrame(props, geometry=geoms, crs=MODEL_CRS).to_crs(crs)


def write_city(city: City, out: str | Path, school_language: str = "fi") -> dict[str, Path]:
    """Write a city in the input formats of ``read_city`` (every format and CRS is used once).

    Families are written as suppressed (blank) on land, so that reading the files back
    places the same number of families by the same choice rule as the synthetic city: the
    run is byte-identical. (A city read from files loses its counted families this way: they
    are imputed on reading back.) A city without a CRS is placed at ``WRITE_ORIGIN``.

    Args:
        city: The city (synthetic or read).
        out: Target directory (created).
        school_language: Language written for its schools and catchments.

    Returns:
        The config key -> file written (``city.<key>=<path>``).
    """
    require_geo()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    west, north = city.origin if city.crs else WRITE_ORIGIN
    boxes = _cell_boxes(city, west, north)
    m = city.cell_km * 1000.0
    col, row = np.divmod(np.arange(city.n_cells), city.height)
    grid = pd.DataFrame({"euref_x": west + col * m, "euref_y": north - (row + 1) * m})
    grid["families"] = np.where(city.land, "", "0")
    for k, name in enumerate(GRID_COLUMNS["tenure"]):
        grid[name] = city.dwellings[:, k]
    grid["price"], grid["amenity"] = city.price, city.amenity
    paths = {key: out / name for key, name in (
        ("grid", "grid.csv"), ("districts", "districts.gpkg"), ("renewal", "renewal.gpkg"),
        ("catchments_lower", "catchments_lower.geojson"),
        ("catchments_upper", "catchments_upper.gpkg"), ("schools", "schools.csv"),
        ("daycares", "daycares.geojson"))}
    grid.to_csv(paths["grid"], index=False)

    ids, names = city.label("district", city.n_districts)
    _polygons(boxes, city.district, city.n_districts, {"id": ids, "name": names},
              MODEL_CRS).to_file(paths["districts"], driver="GPKG")
    if city.renewal.any():
        ren = city.renewal_cell.astype(np.int64) - 1  # 0 in renewal districts, -1 elsewhere
        _polygons(boxes, ren, 1, {"id": ["R0"], "name": ["renewal areas"]},
                  MODEL_CRS).to_file(paths["renewal"], driver="GPKG")
    else:
        del paths["renewal"]

    n_l, n_u = len(city.lower_cells), len(city.upper_cells)
    s_ids, s_names = city.label("school", n_l + n_u)
    for key, lab, first, n, crs in (("catchments_lower", city.catchment_lower, 0, n_l,
                                     "EPSG:3879"),
                                    ("catchments_upper", city.catchment_upper, n_l, n_u,
                                     MODEL_CRS)):
        sl = slice(first, first + n)
        gdf = _polygons(boxes, lab, n, {"id": [f"C{i}" for i in s_ids[sl]],
                                        "name": list(s_names[sl]),
                                        "school_id": list(s_ids[sl]),
                                        "language": [school_language] * n}, crs)
        if paths[key].suffix == ".geojson":
            write_geojson(gdf, paths[key])
        else:
            gdf.to_file(paths[key], driver="GPKG")

    def centre(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return west + (cells // city.height + 0.5) * m, north - (cells % city.height + 0.5) * m

    x, y = centre(np.concatenate([city.lower_cells, city.upper_cells]))
    emph = np.concatenate([city.lower_emphasis, city.upper_emphasis])
    pd.DataFrame({"id": s_ids, "name": s_names,
                  "level": ["lower"] * n_l + ["upper"] * n_u,
                  "language": school_language, "capacity": "",
                  "emphasis": np.where(emph, "yes", ""),
                  "easting_etrs_tm35fin": x, "northing_etrs_tm35fin": y,
                  }).to_csv(paths["schools"], index=False)

    d_ids, d_names = city.label("daycare", len(city.daycare_cells))
    pts = shapely.points(*centre(city.daycare_cells))
    gdf = gpd.GeoDataFrame({"id": d_ids, "name": d_names,
                            "provider": np.where(city.daycare_private, "private", "municipal")},
                           geometry=pts, crs=MODEL_CRS).to_crs("EPSG:4326")
    write_geojson(gdf, paths["daycares"], rfc7946=True)
    return paths


def write_geojson(gdf: gpd.GeoDataFrame, path: Path, rfc7946: bool = False) -> None:
    """Write GeoJSON at full precision.

    With a named ``crs`` member (as the City of Helsinki publishes), or as plain RFC 7946
    WGS84 without one.
    """
    data = json.loads(gdf.to_json(drop_id=True))
    if not rfc7946:
        auth, code = gdf.crs.to_authority()
        data["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:{auth}::{code}"}}
    path.write_text(json.dumps(data), encoding="utf-8")
