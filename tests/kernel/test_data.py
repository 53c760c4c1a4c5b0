from mocks.kernel.data import clone


def test_clone_is_deep_and_equal() -> None:
    original = {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}
    copied = clone(original)
    assert copied == original
    copied["a"][1]["b"] = "changed"
    assert original["a"][1]["b"] == "c"


def test_clone_falls_back_for_non_json_values() -> None:
    marker = object()
    original = {"x": [marker], 1: "int key"}
    copied = clone(original)
    assert copied[1] == "int key" and copied["x"][0] is marker
    assert copied["x"] is not original["x"]


def test_clone_passes_scalars_through() -> None:
    assert clone(5) == 5 and clone("s") == "s" and clone(None) is None
