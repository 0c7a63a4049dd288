"""The trigger form's image names: read from the manifest once per content, then from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchpipe.airflow.fleet_names import image_names
from patchpipe.fleet import load_fleet

DEMO = Path(__file__).resolve().parents[2] / "include" / "fleet.yaml"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PATCHPIPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def manifest(tmp_path) -> Path:
    copy = tmp_path / "fleet.yaml"
    copy.write_text(DEMO.read_text())
    return copy


def refuse_to_load(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the manifest was loaded although its names were cached")

    monkeypatch.setattr("patchpipe.fleet.parse_fleet", refuse)


def test_names_are_the_manifests_and_are_then_served_from_the_cache(cache, manifest, monkeypatch):
    expected = load_fleet(DEMO).image_names
    assert image_names(manifest) == expected
    (written,) = cache.glob("fleet-names-*.json")
    assert json.loads(written.read_text())["names"] == expected

    refuse_to_load(monkeypatch)
    assert image_names(manifest) == expected


def test_a_changed_manifest_is_read_again(cache, manifest):
    image_names(manifest)
    manifest.write_text(manifest.read_text().replace("name: demo-web", "name: shop-web"))
    names = image_names(manifest)
    assert "shop-web" in names and "demo-web" not in names


def test_an_invalid_or_missing_manifest_gives_no_names_and_caches_nothing(cache, manifest, tmp_path):
    manifest.write_text("version: 1\nimages: [")
    assert image_names(manifest) == []
    assert image_names(tmp_path / "absent.yaml") == []
    assert not cache.exists() or not list(cache.glob("fleet-names-*.json"))


def test_a_corrupt_cache_is_rebuilt(cache, manifest):
    expected = image_names(manifest)
    (written,) = cache.glob("fleet-names-*.json")
    written.write_text('{"manifest_sha256": ')
    assert image_names(manifest) == expected
    assert json.loads(written.read_text())["names"] == expected


def test_a_cache_that_cannot_be_written_still_gives_the_names(tmp_path, manifest, monkeypatch):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("PATCHPIPE_CACHE", str(blocked))
    assert image_names(manifest) == load_fleet(DEMO).image_names


def test_two_manifests_keep_their_own_names(cache, manifest, tmp_path):
    other = tmp_path / "other" / "fleet.yaml"
    other.parent.mkdir()
    other.write_text(manifest.read_text().replace("name: demo-web", "name: shop-web"))
    assert "demo-web" in image_names(manifest)
    assert "shop-web" in image_names(other)
    assert "demo-web" in image_names(manifest)
    assert len(list(cache.glob("fleet-names-*.json"))) == 2
