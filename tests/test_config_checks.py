"""Configuration is checked once, up front: a user's first mistake gets one clear line, never a traceback."""

from __future__ import annotations

import pytest
import yaml

from resources.libraries import ConfigError, LibraryConfig, LibraryStore


def _write(store: LibraryStore, text: str) -> None:
    store.dir("shop").mkdir(parents=True, exist_ok=True)
    (store.dir("shop") / "library.yaml").write_text(text, "utf-8")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("ocrr: on\n", "unknown key 'ocrr' (did you mean 'ocr'?)"),
        ("ocr: maybe\n", "ocr = 'maybe' is not allowed: should be 'auto', 'on' or 'off'"),
        ("holdout_frac: lots\n", "holdout_frac = 'lots' is not allowed: should be a valid number"),
        ("finetune: {budget: 3}\n", "unknown key 'finetune.budget' (did you mean 'budget_min'?)"),
        ("finetune: {epochs: 0}\n", "finetune.epochs = 0 is not allowed: should be greater than or equal to 1"),
        ("keypoints: surf\n", "keypoints = 'surf' is not allowed: should be a valid boolean, or 'orb' or 'rootsift'"),
        ("views: [a\n", "not valid YAML"),
    ],
)
def test_invalid_library_yaml_is_one_line_naming_key_value_and_what_is_allowed(tmp_path, text, line):
    store = LibraryStore(root=str(tmp_path))
    _write(store, "name: shop\nmedia: /m\n" + text)
    with pytest.raises(ConfigError) as caught:
        store.config("shop")
    assert str(caught.value).endswith(line) or line in str(caught.value), str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(("value", "expected"), [("on", "on"), ("off", "off"), ("auto", "auto"), ("yes", "on")])
def test_ocr_on_and_off_are_yaml_booleans_and_mean_what_they_say(tmp_path, value, expected):
    store = LibraryStore(root=str(tmp_path))
    _write(store, f"name: shop\nmedia: /m\nocr: {value}\n")
    assert store.config("shop").ocr == expected


def test_a_new_library_writes_a_config_that_reads_back(tmp_path):
    store = LibraryStore(root=str(tmp_path))
    store.create(LibraryConfig(name="shop", media="/m"))
    assert store.config("shop") == LibraryConfig(name="shop", media="/m")


def test_run_refuses_bad_config_before_any_step(cli, tmp_path, small_demo):
    assert cli("init", "shop", "--media", small_demo.uploads_dir).exit_code == 0
    assert cli("catalog", "shop", small_demo.catalog_path).exit_code == 0
    path = tmp_path / "home" / "libraries" / "shop" / "library.yaml"
    config = yaml.safe_load(path.read_text("utf-8"))
    path.write_text(yaml.safe_dump({**config, "ocrr": "on"}), "utf-8")
    result = cli("run", "shop")
    assert result.exit_code == 1
    assert result.output.strip().endswith("unknown key 'ocrr' (did you mean 'ocr'?)")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "warehouse" / "shop").exists()  # no step ran
    assert _no_runs(tmp_path)


def _no_runs(tmp_path) -> bool:
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(tmp_path / "home" / "dagster_home")) as instance:
        return instance.get_runs_count() == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("run", "nosuch"), "no library named 'nosuch'"),
        (("search", "nosuch", "x"), "no library named 'nosuch'"),
        (("search", "shop", "x"), "library 'shop' has not run yet: `tagsmith run shop` first"),
        (("sql", "shop", "SELECT 1"), "library 'shop' has not run yet"),
        (("segments", "shop"), "library 'shop' has not run yet"),
        (("heads", "shop"), "library 'shop' has not run yet"),
        (("rollback", "shop", "product", "previous"), "library 'shop' has not run yet"),
        (("export", "shop", "out.csv"), "library 'shop' has not run yet"),
        (("similar", "shop", "x.jpg"), "library 'shop' has not run yet"),
        (("export", "shop", "out.xlsx"), "export to a .csv or .parquet file, not 'out.xlsx'"),
        (("run", "shop", "--job", "everything"), "--job 'everything' is not a job: one of tag_library, retrain_heads"),
        (("run", "shop"), "library 'shop' has no catalog yet"),
        (("token", "create", "nosuch"), "no library named 'nosuch'"),
        (("token", "revoke", "0badc0de"), "no token '0badc0de': `tagsmith token list` shows the token ids"),
    ],
)
def test_verbs_on_a_missing_or_never_run_library_say_so_in_one_line(cli, tmp_path, args, line):
    (tmp_path / "media").mkdir()
    assert cli("init", "shop", "--media", tmp_path / "media").exit_code == 0
    result = cli(*args)
    assert result.exit_code == 1
    assert line in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_run_names_a_missing_media_folder(cli, tmp_path, small_demo):
    assert cli("init", "shop", "--media", tmp_path / "gone").exit_code == 0
    assert cli("catalog", "shop", small_demo.catalog_path).exit_code == 0
    result = cli("run", "shop")
    assert result.exit_code == 1
    assert f"media folder not found: {tmp_path / 'gone'} (library.yaml: media)" in result.output


def test_a_failed_step_is_the_last_line_and_no_old_figures_pass_as_new(cli, tmp_path, small_demo):
    assert cli("init", "shop", "--media", small_demo.uploads_dir).exit_code == 0
    assert cli("catalog", "shop", small_demo.catalog_path).exit_code == 0
    result = cli("run", "shop")  # no examples yet: nothing to learn from
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("step ") and " failed: " in last, result.output
    assert "Traceback" not in result.output and "new_shoot_top1" not in result.output
