"""The label table: standard order, unique readable names, duplicates disambiguated."""

from __future__ import annotations

import pytest

from ml_worker.labels import build_labels, labels_from_package


def test_labels_are_unique_and_in_standard_order():
    labels = labels_from_package()
    assert len(labels) == 1000
    assert [lb.index for lb in labels] == list(range(1000))
    assert len({lb.name for lb in labels}) == 1000
    assert labels[967].name == "espresso" and labels[967].wnid == "n07920052"
    assert labels[248].name == "Eskimo dog" and labels[248].synonyms == ["Eskimo dog", "husky"]
    assert {labels[134].name, labels[517].name} == {"crane (bird)", "crane (machine)"}
    assert {labels[638].name, labels[639].name} == {"maillot (swimsuit)", "maillot (tank suit)"}


def test_built_labels_file_is_the_package_table(each_model):
    assert each_model.labels() == labels_from_package()


def test_duplicate_names_are_refused():
    wnids = {str(i): f"n{i:08d}" for i in range(1000)}
    names = {str(i): f"class {i}" for i in range(1000)}
    names["5"] = "class 4"
    with pytest.raises(ValueError, match="not unique"):
        build_labels(wnids, names)


def test_unsorted_class_order_is_refused():
    wnids = {str(i): f"n{999 - i:08d}" for i in range(1000)}
    with pytest.raises(ValueError, match="standard"):
        build_labels(wnids, {str(i): f"class {i}" for i in range(1000)})
