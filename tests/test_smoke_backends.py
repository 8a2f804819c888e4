import kiln


def test_roundtrip(tracked: str) -> None:
    with kiln.start_run(experiment="e", params={"a": 1}) as run:
        kiln.log_metric("m", 0.5)
    got = kiln.get_run(run.id)
    assert got.params == {"a": "1"}
    assert got.metrics == {"m": 0.5}
