"""Write the sample real-geography files: a made-up district of about 10 km2 (``data/sample``).

Usage::

    python -m sim.geo_sample data/sample

The files are in the formats ``sim.geodata`` reads, each in a format and CRS the real data
comes in: a Statistics Finland style grid CSV (``xyind``, Paavo-style columns, suppressed
cells blank), catchments as GeoJSON in ETRS-GK25 (grades 1-6) and plain WGS84 (grades 7-9)
with a Swedish-language network beside the Finnish one, districts and the renewal area as
GeoJSON in ETRS-TM35FIN, schools as a Service Map style CSV (WGS84 ``lon, lat``) and daycares
as WGS84 GeoJSON. Names and numbers are invented; the layout (a bay to the south-east, a
denser, poorer renewal area in the north-west) is only meant to look like a Helsinki suburb.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from sim.geodata import require_geo, write_geojson

try:
    import geopandas as gpd
    import shapely
except ImportError:  # the geo extra is optional; require_geo names it
    gpd = None

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
SAMPLE_FILES = {  # city config key -> file name in the sample folder
    "grid": "grid.csv", "catchments_lower": "catchments_lower.geojson",
    "catchments_upper": "catchments_upper.geojson", "districts": "districts.geojson",
    "renewal": "renewal.geojson", "schools": "schools.csv", "daycares": "daycares.geojson"}
WEST, SOUTH = 390000.0, 6678000.0  # EPSG:3067, aligned to the 250 m grid
WIDTH, HEIGHT, CELL = 4000.0, 3000.0, 250.0
SEED = 10
DISTRICTS = (("101", "Kuusikko"), ("102", "Haapala"), ("103", "Rantamäki"), ("104", "Satama"))
SCHOOLS = (  # id, name, level, language, capacity, emphasis, x, y (offsets from WEST, SOUTH)
    ("K1", "Kuusikon ala-asteen koulu", "lower", "fi", 380, "", 800, 2300),
    ("K2", "Haapalan koulu", "lower", "fi", 420, "", 2900, 2400),
    ("K3", "Rantamäen ala-asteen koulu", "lower", "fi", 300, "music", 1500, 700),
    ("K4", "Kuusikon yläkoulu", "upper", "fi", 500, "", 1200, 1800),
    ("K5", "Haapalan yläkoulu", "upper", "fi", 450, "science", 2800, 1700),
    ("K6", "Granbacka skola", "both", "sv", 250, "", 2000, 2600),
    ("K7", "Steiner-koulu", "both", "fi", 200, "steiner", 600, 600),
)
NO_CATCHMENT = ("K7",)  # a school of choice only
DAYCARES = (  # id, name, provider, x, y
    ("P1", "Päiväkoti Käpy", "municipal", 500, 2600),
    ("P2", "Päiväkoti Haapa", "municipal", 2500, 2700),
    ("P3", "Päiväkoti Ranta", "municipal", 1700, 1000),
    ("P4", "Päiväkoti Kallio", "municipal", 3100, 2000),
    ("P5", "Yksityinen päiväkoti Tähti", "private", 1100, 1500),
    ("P6", "Yksityinen päiväkoti Kuu", "private", 2100, 2200),
)


def _land() -> shapely.Geometry:
    """The study area: a rectangle with a bay cut out of its south-east corner."""
    box = shapely.box(WEST, SOUTH, WEST + WIDTH, SOUTH + HEIGHT)
    return shapely.difference(box, shapely.Point(WEST + WIDTH, SOUTH).buffer(1200, 32))


def _catchments(land: shapely.Geometry, sites: list[tuple]) -> list:
    """Voronoi cells of the school sites, clipped to the land (nearest-school catchments)."""
    pts = shapely.multipoints([(WEST + s[6], SOUTH + s[7]) for s in sites])
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=land))
    out = []
    for s in sites:
        p = shapely.Point(WEST + s[6], SOUTH + s[7])
        out.append(shapely.intersection(next(c for c in cells if c.contains(p)), land))
    return out


def _grid(land: shapely.Geometry, renewal: shapely.Geometry) -> pd.DataFrame:
    """Statistics Finland style rows for the inhabited 250 m cells."""
    rng = np.random.default_rng(SEED)
    x0 = np.arange(WEST, WEST + WIDTH, CELL)
    y0 = np.arange(SOUTH, SOUTH + HEIGHT, CELL)
    gx, gy = (a.ravel() for a in np.meshgrid(x0, y0, indexing="ij"))
    inside = shapely.contains_xy(land, gx + CELL / 2, gy + CELL / 2)
    gx, gy = gx[inside], gy[inside]
    n = len(gx)
    ren = shapely.contains_xy(renewal, gx + CELL / 2, gy + CELL / 2)
    north = (gy - SOUTH) / HEIGHT  # denser to the north, densest in the renewal area
    pop = rng.poisson(40 + 120 * north + 150 * ren)
    few = rng.random(n) < 0.08  # scattered sparsely inhabited cells
    pop[few] = rng.integers(1, 10, size=int(few.sum()))
    fam = rng.binomial(pop, 0.12)
    low = np.where(ren, 0.45, 0.2)
    high = np.where(ren, 0.1, 0.25 + 0.2 * (1 - north))
    hh = np.round(pop / 2.0).astype(np.int64)
    inc = rng.multinomial(hh, np.column_stack([low, 1 - low - high, high]))
    foreign = rng.binomial(pop, np.where(ren, 0.35, 0.12))
    dw = np.round(pop / 1.9).astype(np.int64)
    tenure = rng.multinomial(dw, np.column_stack([
        np.where(ren, 0.55, 0.15), np.where(ren, 0.3, 0.35), np.where(ren, 0.15, 0.5)]))
    df = pd.DataFrame({
        "xyind": [f"{int(x)}{int(y)}" for x, y in zip(gx, gy, strict=True)],
        "he_vakiy": pop, "te_laps": fam,
        "tr_pi_tul": inc[:, 0], "tr_ke_tul": inc[:, 1], "tr_hy_tul": inc[:, 2],
        "lang_native": pop - foreign, "lang_foreign": foreign,
        "dw_social": tenure[:, 0], "dw_private": tenure[:, 1], "dw_owner": tenure[:, 2],
    })
    # Statistics Finland protects cells with fewer than 10 inhabitants: only the total shows.
    protected = pop < 10
    cols = [c for c in df.columns if c not in ("xyind", "he_vakiy")]
    df[cols] = df[cols].astype(object)
    df.loc[protected, cols] = ""
    return df


def write_sample(out: str | Path) -> dict[str, Path]:
    """Write the sample files into ``out``.

    Args:
        out: Target directory (created).

    Returns:
        The config key -> file written (``city.<key>=<path>``).
    """
    require_geo()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    land = _land()
    cut_x, cut_y = WEST + 1800, SOUTH + 1400  # district borders, not on the grid lines
    quads = [shapely.box(WEST, cut_y, cut_x, SOUTH + HEIGHT),
             shapely.box(cut_x, cut_y, WEST + WIDTH, SOUTH + HEIGHT),
             shapely.box(WEST, SOUTH, cut_x, cut_y), shapely.box(cut_x, SOUTH, WEST + WIDTH, cut_y)]
    districts = [shapely.intersection(q, land) for q in quads]
    renewal = shapely.Polygon([(WEST + 150, SOUTH + 1650), (WEST + 1650, SOUTH + 1550),
                               (WEST + 1700, SOUTH + 2900), (WEST + 200, SOUTH + 2950)])
    paths = {k: out / v for k, v in SAMPLE_FILES.items()}
    _grid(land, renewal).to_csv(paths["grid"], index=False)

    def layer(props: dict, geoms: list, crs: str = "EPSG:3067") -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(props, geometry=geoms, crs="EPSG:3067").to_crs(crs)

    write_geojson(layer({"id": [d[0] for d in DISTRICTS], "name": [d[1] for d in DISTRICTS]},
                         districts), paths["districts"])
    write_geojson(layer({"id": ["U1"], "name": ["Kuusikko-Haapala renewal area"]}, [renewal]),
                   paths["renewal"])
    for key, levels, crs in (("catchments_lower", ("lower", "both"), "EPSG:3879"),
                             ("catchments_upper", ("upper", "both"), "EPSG:4326")):
        rows = []
        for lang in ("fi", "sv"):
            sites = [s for s in SCHOOLS if s[2] in levels and s[3] == lang
                     and s[0] not in NO_CATCHMENT]
            for s, g in zip(sites, _catchments(land, sites), strict=True):
                rows.append({"id": f"{key[11].upper()}{s[0]}", "name": s[1], "school_id": s[0],
                             "language": lang, "geometry": g})
        gdf = layer({k: [r[k] for r in rows] for k in ("id", "name", "school_id", "language")},
                    [r["geometry"] for r in rows], crs)
        write_geojson(gdf, paths[key], rfc7946=crs == "EPSG:4326")
    sch = layer({"id": [s[0] for s in SCHOOLS]},
                [shapely.Point(WEST + s[6], SOUTH + s[7]) for s in SCHOOLS], "EPSG:4326")
    pd.DataFrame({"id": [s[0] for s in SCHOOLS], "name": [s[1] for s in SCHOOLS],
                  "level": [s[2] for s in SCHOOLS], "language": [s[3] for s in SCHOOLS],
                  "capacity": [s[4] for s in SCHOOLS], "emphasis": [s[5] for s in SCHOOLS],
                  "lon": shapely.get_x(sch.geometry.to_numpy()).round(7),
                  "lat": shapely.get_y(sch.geometry.to_numpy()).round(7),
                  }).to_csv(paths["schools"], index=False)
    write_geojson(layer({"id": [d[0] for d in DAYCARES], "name": [d[1] for d in DAYCARES],
                          "provider": [d[2] for d in DAYCARES]},
                         [shapely.Point(WEST + d[3], SOUTH + d[4]) for d in DAYCARES],
                         "EPSG:4326"), paths["daycares"], rfc7946=True)
    log.info("sample written to %s", out)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sim.geo_sample",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", nargs="?", default="data/sample",
                        help="where to write the files (default: data/sample)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    written = write_sample(parser.parse_args().folder)
    log.info("overrides: %s", " ".join(f"city.{k}={v}" for k, v in written.items()))
