"""Real geography (city=from_files): the sample district, outputs, round trip, bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.city import generate_city
from sim.config import load_config
from sim.geo_sample import SAMPLE_DIR as SAMPLE
from sim.geo_sample import SAMPLE_FILES as FILES
from sim.geo_sample import write_sample
from sim.geodata import build_city, read_polygons, write_city
from sim.model import SegregationModel
from sim.outputs import write_run

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("metrics.parquet", "units.parquet", "areas.parquet")


def file_overrides(paths: dict[str, Path]) -> list[str]:
    return ["city=from_files", *(f"city.{k}={v}" for k, v in paths.items())]


def sample_config(folder: Path = SAMPLE, *extra: str):
    return load_config([*file_overrides({k: folder / v for k, v in FILES.items()}),
                        "output.progress=false", *extra])


@pytest.fixture(scope="module")
def sample_model() -> SegregationModel:
    """The city as generated from the files (no burn-in: the families are the grid's)."""
    return SegregationModel(sample_config(SAMPLE, "years=2", "start=fresh"))


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLE, tmp_path / "s")
    return tmp_path / "s"


def test_sample_files_are_what_the_script_writes(tmp_path: Path) -> None:
    write_sample(tmp_path)
    for name in FILES.values():
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
        assert (SAMPLE / name).stat().st_size < 20_000, name  # kilobytes, not megabytes


def test_rasterised_areas_match_polygons(sample_model: SegregationModel) -> None:
    c, cfg = sample_model.city, sample_model.cfg.city
    cell_m2 = (c.cell_km * 1000) ** 2
    width = c.cell_km * 1000
    district_ids, _ = c.label("district", c.n_districts)
    layers = [(read_polygons(cfg.districts), "id", c.district, list(district_ids))]
    ids, _ = c.label("school", len(c.lower_cells) + len(c.upper_cells))
    n_l = len(c.lower_cells)
    for path, lab, sids in ((cfg.catchments_lower, c.catchment_lower, ids[:n_l]),
                            (cfg.catchments_upper, c.catchment_upper, ids[n_l:])):
        layers.append((read_polygons(path, cfg.school_language), "school_id", lab, list(sids)))
    for poly, key, lab, order in layers:
        assert len(poly) == len(np.unique(lab[lab >= 0]))
        for uid, geom in zip(poly[key], poly.geometry, strict=True):
            raster = (lab == order.index(uid)).sum() * cell_m2
            assert abs(raster - geom.area) <= geom.length * width, (uid, raster, geom.area)
    ren = read_polygons(cfg.renewal).geometry.iloc[0]
    raster = (c.renewal_area >= 0).sum() * cell_m2
    assert abs(raster - ren.area) <= ren.length * width
    assert c.renewal.sum() == 1  # Kuusikko lies mostly in the renewal area


def test_every_family_lives_in_its_catchment_polygon(sample_model: SegregationModel) -> None:
    m = sample_model
    c, cfg, f = m.city, m.cfg.city, m.families
    a = np.flatnonzero(f.active)
    x, y = c.map_xy(*np.divmod(f.cell[a], c.height))
    ids, _ = c.label("school", len(m.schools.cell))
    for lev, path in enumerate((cfg.catchments_lower, cfg.catchments_upper)):
        poly = read_polygons(path, cfg.school_language).dissolve("school_id")
        school = ids[m.school_of_cell[lev, f.cell[a]]]
        inside = shapely.contains_xy(poly.geometry.loc[school].to_numpy(), x, y)
        assert inside.all(), np.flatnonzero(~inside)[:5]


def test_sample_families_match_the_grid(sample_model: SegregationModel) -> None:
    c = sample_model.city
    grid = pd.read_csv(SAMPLE / "grid.csv")
    counted = grid["te_laps"].fillna(0).sum()
    assert len(c.counted_families) == counted
    assert c.n_imputed > 0  # protected cells are imputed
    assert sample_model.families.n_active == counted + c.n_imputed
    # the renewal area is poorer: more low-income families there than elsewhere
    fam = c.counted_families
    ren = c.renewal_cell[fam[:, 0]]
    assert (fam[ren, 2] == 0).mean() > (fam[~ren, 2] == 0).mean()


def test_sample_run_writes_every_output_with_real_ids(tmp_path: Path,
                                                      sample_model: SegregationModel) -> None:
    sample_model.run(2)
    write_run(sample_model, tmp_path)
    for name in (*TABLES, "config.yaml", "summary.json", "figures/map_status_catchments.png",
                 "figures/school_composition.png", "figures/index_timeseries.png"):
        assert (tmp_path / name).is_file(), name
    units = pd.read_parquet(tmp_path / "units.parquet")
    schools = pd.read_csv(SAMPLE / "schools.csv")
    fi = schools[schools["language"] == "fi"]
    sch = units[units["kind"].str.startswith("school")]
    assert set(sch["source_id"]) == set(fi["id"])
    assert set(sch["name"]) == set(fi["name"])
    day = units[units["kind"].str.startswith("daycare")]
    dc = json.loads((SAMPLE / "daycares.geojson").read_text())["features"]
    assert set(day["name"]) == {d["properties"]["name"] for d in dc}
    assert set(day.loc[day["kind"] == "daycare_private", "source_id"]) == {"P5", "P6"}
    areas = pd.read_parquet(tmp_path / "areas.parquet")
    dist = areas[areas["kind"] == "district"]
    assert set(dist["name"]) == {"Kuusikko", "Haapala", "Rantamäki", "Satama"}
    assert set(areas.loc[areas["kind"] == "catchment_lower", "source_id"]) == {
        "K1", "K2", "K3", "K7"}
    geo = json.loads((tmp_path / "summary.json").read_text())["geography"]
    assert geo["crs"] == "EPSG:3067" and geo["origin"] == [390000.0, 6681000.0]


def test_register_capacities_are_the_seats() -> None:
    model = SegregationModel(sample_config(SAMPLE, "years=1"))
    ids, _ = model.city.label("school", len(model.schools.cell))
    seats = dict(zip(ids, model.schools.design_capacity.tolist(), strict=True))
    # K1-K5 as in schools.csv; K7 serves both levels: 200 seats split 6 : 3 by grades.
    assert [seats[k] for k in ("K1", "K2", "K3", "K4", "K5")] == [380, 420, 300, 500, 450]
    k7 = [v for k, v in zip(ids, model.schools.design_capacity, strict=True) if k == "K7"]
    assert sorted(k7) == [67, 133]
    # No daycare seats in the register: they come from the initial demand.
    assert (model.daycares.capacity >= 8).all()


def run_sample(out: Path, *extra: str) -> tuple[pd.DataFrame, dict]:
    model = SegregationModel(sample_config(SAMPLE, "years=3", "start=fresh", *extra))
    model.run()
    write_run(model, out, figures=False)
    units = pd.read_parquet(out / "units.parquet")
    return units[units["kind"].str.startswith("school")], json.loads(
        (out / "summary.json").read_text())


def test_register_seats_hold_and_overcrowding_is_reported(tmp_path: Path, caplog) -> None:
    # Issue #21, bug 3: a file city keeps its register's seats (city.capacity_rule=hold).
    with caplog.at_level("WARNING", logger="sim.outputs"):
        held, summary = run_sample(tmp_path / "hold")
    assert (held["design_capacity"].to_numpy() > 0).all()
    seats = held.groupby("source_id")["design_capacity"].first()
    assert seats["K1"] == 380 and seats["K2"] == 420  # the register's, in every year
    # The upper schools have seats enough in all: none goes beyond its register seats,
    # although with the guarantee the catchment schools would.
    upper = held[held["kind"] == "school_upper"]
    assert (upper["capacity"] == upper["design_capacity"]).all()
    assert (upper["enrolled"] <= upper["design_capacity"]).all()
    # The lower schools have fewer seats in all than pupils (the made-up register): every
    # one of them is full before any gets temporary places, and those are reported.
    lower = held[held["kind"] == "school_lower"]
    for _, year in lower.groupby("year"):
        if (year["capacity"] > year["design_capacity"]).any():
            assert (year["enrolled"] >= year["design_capacity"]).all()
    over = {r["source_id"]: r for r in summary["temporary_places"]}
    assert over["K1"]["seats"] == 380 and over["K1"]["most_temporary_places"] > 0
    assert set(over) <= {"K1", "K2", "K3", "K7"}
    assert "temporary places beyond the seats (city.capacity_rule=hold)" in caplog.text
    assert "K1 380 seats +" in caplog.text
    guaranteed, summary = run_sample(tmp_path / "guarantee", "city.capacity_rule=guarantee")
    up = guaranteed[guaranteed["kind"] == "school_upper"]
    assert (up["capacity"] > up["design_capacity"]).any()  # the switch: temporary places
    assert {"K5"} <= {r["source_id"] for r in summary["temporary_places"]}


def test_capacity_rule_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^config error: city.capacity_rule='keep' is not "
                                         r"allowed; expected 'guarantee' or 'hold'$"):
        load_config(["city.capacity_rule=keep"])


def test_catchments_keep_their_schools_labels_after_a_school_is_added(tmp_path: Path) -> None:
    model = SegregationModel(sample_config(SAMPLE, "years=1"))
    new = model.open_school(int(model.city.lower_cells[0]), 0, 100)
    model.run()
    write_run(model, tmp_path, figures=False)
    areas = pd.read_parquet(tmp_path / "areas.parquet")
    last = areas[areas["year"] == 1]
    lower = last.loc[last["kind"] == "catchment_lower", "source_id"].tolist()
    upper = last.loc[last["kind"] == "catchment_upper", "source_id"].tolist()
    assert lower == ["K1", "K2", "K3", "K7", f"S{new:03d}"]
    assert upper == ["K4", "K5", "K7"]


def test_round_trip_of_the_synthetic_city_gives_a_byte_identical_run(tmp_path: Path) -> None:
    # The default city (small) and its fit, named: a file city would otherwise take Helsinki's.
    base = ["years=2", "seed=5", "output.progress=false", "behaviour=calibrated_small"]
    cfg = load_config(base)
    paths = write_city(generate_city(cfg.city), tmp_path / "files")
    assert {p.suffix for p in paths.values()} == {".csv", ".gpkg", ".geojson"}
    runs = []
    # The synthetic city's seats come from demand and its rule is the guarantee.
    as_files = [*file_overrides(paths), "city.capacity_rule=guarantee"]
    for i, extra in enumerate(([], as_files)):
        model = SegregationModel(load_config([*base, *extra]))
        model.run()
        runs.append(write_run(model, tmp_path / f"run{i}", figures=False))
    for name in TABLES:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


def test_sample_runs_are_byte_identical(tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        model = SegregationModel(sample_config(SAMPLE, "years=2", "seed=3"))
        model.run()
        runs.append(write_run(model, tmp_path / str(i), figures=False))
    for name in TABLES:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


def test_catchments_without_school_id_match_school_names(sample_copy: Path) -> None:
    def drop_school_id(d: dict) -> None:
        for f in d["features"]:
            del f["properties"]["school_id"]

    edit_json(sample_copy / FILES["catchments_lower"], drop_school_id)
    a, b = build_city(sample_config(sample_copy).city), build_city(sample_config().city)
    assert np.array_equal(a.catchment_lower, b.catchment_lower)

    def rename(d: dict) -> None:
        d["features"][1]["properties"]["name"] = "Haapalan uusi koulu"

    edit_json(sample_copy / FILES["catchments_lower"], rename)
    with pytest.raises(ValueError, match="feature 1 id=LK2 name=Haapalan uusi koulu: has no "
                                         "school_id and its name is not a lower-grade"):
        build_city(sample_config(sample_copy).city)


def test_coarser_model_cells_sum_the_grid() -> None:
    c = build_city(sample_config(SAMPLE, "city.cell_size_m=500").city)
    fine = build_city(sample_config(SAMPLE).city)
    assert (c.width, c.height) == (8, 6)
    assert len(c.counted_families) == len(fine.counted_families)
    assert c.dwellings.sum() == fine.dwellings.sum()


def test_grid_geopackage_reads_like_the_csv(sample_copy: Path) -> None:
    grid = pd.read_csv(SAMPLE / FILES["grid"])
    x0, y0 = grid["xyind"].astype(str).str[:6].astype(float), grid["xyind"].astype(str).str[6:]
    y0 = y0.astype(float)
    cells = gpd.GeoDataFrame(grid.drop(columns="xyind"),
                             geometry=shapely.box(x0, y0, x0 + 250, y0 + 250), crs="EPSG:3067")
    cells.to_crs("EPSG:3879").to_file(sample_copy / "grid.gpkg", driver="GPKG")
    (sample_copy / FILES["grid"]).unlink()
    cfg = load_config(file_overrides({**{k: sample_copy / v for k, v in FILES.items()},
                                      "grid": sample_copy / "grid.gpkg"}))
    a, b = build_city(cfg.city), build_city(sample_config().city)
    for name in ("land", "district", "dwellings", "catchment_lower", "counted_families"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.n_imputed == b.n_imputed


# ---------------------------------------------------------------------------- bad files
def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_csv(path: Path, change) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(df)
    df.to_csv(path, index=False)


def drop_crs(d: dict) -> None:
    del d["crs"]


def unknown_crs(d: dict) -> None:
    d["crs"]["properties"]["name"] = "EPSG:99999"


def overlap(d: dict) -> None:
    g = shapely.geometry.shape(d["features"][0]["geometry"]).buffer(400)
    d["features"][0]["geometry"] = shapely.geometry.mapping(g)


def drop_catchment(d: dict) -> None:
    d["features"] = [f for f in d["features"] if f["properties"]["school_id"] != "K2"]


def unknown_school(d: dict) -> None:
    d["features"][1]["properties"]["school_id"] = "K99"


def set_cell(col: str, value: str):
    def change(df: pd.DataFrame) -> None:
        df.loc[3, col] = value
    return change


def outside(df: pd.DataFrame) -> None:
    df.loc[len(df)] = df.loc[1]
    df.loc[len(df) - 1, "xyind"] = "3950006690000"


def swedish_first(d: dict) -> None:
    d["features"] = d["features"][-1:] + d["features"][:-1]  # the sv area first
    overlap(d)  # grows the sv area: no error, it is the other network
    d["features"][1]["geometry"] = shapely.geometry.mapping(
        shapely.geometry.shape(d["features"][1]["geometry"]).buffer(400))


def bow_tie(d: dict) -> None:
    ring = [[25.0, 60.2], [25.01, 60.21], [25.01, 60.2], [25.0, 60.21], [25.0, 60.2]]
    d["features"][2]["geometry"] = {"type": "Polygon", "coordinates": [ring]}


def set_cells(**values: str):
    def change(df: pd.DataFrame) -> None:
        for col, value in values.items():
            df.loc[3, col] = value
    return change


def church_daycare(d: dict) -> None:
    d["features"][2]["properties"]["provider"] = "church"


def empty_features(d: dict) -> None:
    d["features"] = []


BAD = [
    pytest.param("catchments_lower", drop_crs, "missing CRS", id="missing-crs"),
    pytest.param("catchments_lower", unknown_crs, "unknown CRS 'EPSG:99999'", id="unknown-crs"),
    pytest.param("catchments_lower", overlap, "feature 0 id=LK1 name=Kuusikon ala-asteen koulu: "
                 "overlaps feature", id="overlapping-catchments"),
    pytest.param("catchments_lower", swedish_first, "feature 1 id=LK1 name=Kuusikon ala-asteen "
                 "koulu: overlaps feature", id="overlap-names-the-file-feature"),
    pytest.param("catchments_upper", bow_tie, "feature 2 id=UK6 name=Granbacka skola: is "
                 "not a valid polygon (Self-intersection", id="invalid-polygon"),
    pytest.param("catchments_lower", drop_catchment, "no catchment covers ",
                 id="families-without-catchment"),
    pytest.param("catchments_lower", unknown_school, "school_id='K99' is not a lower-grade "
                 "school in", id="unknown-school-id"),
    pytest.param("grid", set_cell("te_laps", "-3"), "line 5: te_laps=-3 is negative",
                 id="negative-count"),
    pytest.param("grid", set_cell("tr_pi_tul", "many"), "line 5: tr_pi_tul='many' is not a "
                 "number", id="non-numeric-count"),
    pytest.param("grid", outside, "line 175 (cell centre 395125, 6690125): lies outside every "
                 "district", id="cell-outside-districts"),
    pytest.param("grid", set_cells(te_laps="", he_vakiy="", dw_social="", dw_private="",
                                   dw_owner=""),
                 "line 5: families are suppressed and there are no dwellings or population",
                 id="suppressed-without-dwellings"),
    pytest.param("schools", set_cell("language", "de"), "line 5 id=K4 name=Kuusikon yläkoulu: "
                 "language='de' is not fi or sv", id="unknown-language"),
    pytest.param("schools", set_cell("level", "middle"), "line 5 id=K4 name=Kuusikon yläkoulu: "
                 "level='middle' is not one of", id="unknown-level"),
    pytest.param("schools", set_cell("id", "K1"), "line 5 id=K1 name=Kuusikon yläkoulu: "
                 "duplicate id", id="duplicate-id"),
    pytest.param("schools", set_cell("capacity", "lots"), "line 5 id=K4 name=Kuusikon "
                 "yläkoulu: capacity='lots' is not a whole number of seats >= 1",
                 id="non-numeric-capacity"),
    pytest.param("schools", set_cell("capacity", "-5"), "line 5 id=K4 name=Kuusikon "
                 "yläkoulu: capacity='-5' is not a whole number of seats >= 1",
                 id="negative-capacity"),
    pytest.param("daycares", church_daycare, "feature 2 id=P3 name=Päiväkoti Ranta: "
                 "provider='church' is not municipal or private", id="unknown-provider"),
    pytest.param("daycares", empty_features, "empty file (no features)", id="empty-geojson"),
    pytest.param("grid", None, "empty file", id="empty-csv"),
    pytest.param("schools", None, "empty file", id="empty-schools"),
]


@pytest.mark.parametrize(("key", "change", "message"), BAD)
def test_bad_file_gives_one_clear_error(sample_copy: Path, key: str, change, message: str
                                        ) -> None:
    path = sample_copy / FILES[key]
    if change is None:
        path.write_text("")
    elif path.suffix == ".csv":
        edit_csv(path, change)
    else:
        edit_json(path, change)
    with pytest.raises(ValueError) as err:
        build_city(sample_config(sample_copy).city)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    if key == "catchments_lower" and change is drop_catchment:
        assert "grid.csv line 97 (cell centre 391875, 6680875), which has families" in text
    assert message in text, text


def test_missing_file_is_an_error(sample_copy: Path) -> None:
    (sample_copy / FILES["renewal"]).unlink()
    with pytest.raises(ValueError, match=f"^{sample_copy / FILES['renewal']}: no such file$"):
        build_city(sample_config(sample_copy).city)


def test_gpkg_without_crs_is_an_error(sample_copy: Path) -> None:
    path = sample_copy / "districts.gpkg"
    layer = gpd.read_file(sample_copy / FILES["districts"]).set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        layer.to_file(path, driver="GPKG")
    cfg = load_config([*file_overrides({**{k: sample_copy / v for k, v in FILES.items()},
                                        "districts": path})])
    with pytest.raises(ValueError, match=f"^{path}: missing CRS$"):
        build_city(cfg.city)


def test_schools_csv_with_bare_xy_needs_a_crs(sample_copy: Path) -> None:
    path = sample_copy / FILES["schools"]
    def bare_xy(df: pd.DataFrame) -> None:
        df.columns = [{"lon": "x", "lat": "y"}.get(c, c) for c in df.columns]

    edit_csv(path, bare_xy)
    with pytest.raises(ValueError, match="missing CRS: columns x, y need a crs column"):
        build_city(sample_config(sample_copy).city)


@pytest.mark.parametrize(("override", "message"), [
    ("city.grid=", "city.grid='' is not allowed; expected a file path with city=from_files"),
    ("city.school_language=de", "city.school_language='de' is not allowed"),
])
def test_file_config_errors(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_config(SAMPLE, override)


def test_model_cells_finer_than_the_grid_are_an_error() -> None:
    with pytest.raises(ValueError, match="city.cell_size_m=125 is not allowed; expected a "
                                         "multiple of the grid's 250 m cells"):
        build_city(sample_config(SAMPLE, "city.cell_size_m=125").city)


def test_file_keys_need_the_from_files_preset() -> None:
    with pytest.raises(ValueError, match="city.grid='g.csv' is not allowed; expected '' unless "
                                         "city=from_files"):
        load_config(["city.grid=g.csv"])


def test_entry_point_reports_a_bad_file_in_one_line(sample_copy: Path, tmp_path: Path) -> None:
    (sample_copy / FILES["grid"]).write_text("")
    args = [sys.executable, "-m", "experiments.run",
            *file_overrides({k: sample_copy / v for k, v in FILES.items()}),
            f"hydra.run.dir={tmp_path / 'out'}"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {sample_copy / FILES['grid']}: empty file"
    assert not (tmp_path / "out").exists()
