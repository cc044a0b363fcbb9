"""RunSpec: stable ids from canonical JSON, hashability, round trips."""

import hashlib
import json

from normbench.spec import SPEC_VERSION, RunSpec, canonical_json, freeze_options


def test_run_id_is_sha256_of_canonical_json_with_version(make_spec):
    spec = make_spec()
    payload = json.dumps({"spec_version": SPEC_VERSION, "spec": spec.identity()}, sort_keys=True, separators=(",", ":"))
    assert spec.run_id == hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_ids_of_specs_without_plugins_are_those_stored_before_plugins_existed(make_spec):
    # Pinned from the code before `swap_norms` and `plugins` were added: existing stores still resume.
    assert make_spec().run_id == "8890037b09ffaa75"
    assert set(make_spec().to_dict()) - set(make_spec().identity()) == {"plugins"}


def test_plugin_provenance_is_stored_but_never_hashed_and_a_swap_is_hashed(make_spec):
    provenance = {"model": {"reference": "mypkg.nets:build", "version": "0.1.0", "file": "/x/nets.py"}}
    with_plugin = make_spec(model="mypkg.nets:build")
    newer = make_spec(model="mypkg.nets:build", plugins=freeze_options(provenance))
    assert newer.run_id == with_plugin.run_id
    assert newer.to_dict()["plugins"] == provenance and newer.plugin_provenance == provenance
    assert RunSpec.from_dict(json.loads(canonical_json(newer.to_dict()))) == newer
    swapped = make_spec(model="mypkg.nets:build", swap_norms=freeze_options({"layer_norm": False}))
    assert swapped.run_id != with_plugin.run_id


def test_run_id_is_stable_across_processes(make_spec):
    # Python's str hash is salted per process; the id must not depend on it.
    import os
    import subprocess
    import sys

    code = ("import json, sys; from normbench.spec import RunSpec; "
            "print(RunSpec.from_dict(json.loads(sys.argv[1])).run_id)")
    ids = {
        subprocess.run([sys.executable, "-c", code, json.dumps(make_spec().to_dict())], capture_output=True,
                       text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert ids == {make_spec().run_id}
    assert hash(make_spec()) == hash(make_spec())


def test_option_order_does_not_change_id(make_spec):
    a = make_spec(norm_options=freeze_options({"eps": 1e-5, "momentum": 0.1}))
    b = make_spec(norm_options=freeze_options({"momentum": 0.1, "eps": 1e-5}))
    assert a.run_id == b.run_id


def test_every_field_changes_the_id(make_spec):
    base = make_spec()
    for change in [dict(seed=1), dict(batch_size=8), dict(norm="layer"), dict(lr=0.2), dict(device="cuda"),
                   dict(model_options=freeze_options({"widths": [8, 16]})), dict(steps=11)]:
        assert make_spec(**change).run_id != base.run_id, change


def test_round_trip_through_dict_and_nested_options(make_spec):
    spec = make_spec(model_options=freeze_options({"widths": [8, 8]}),
                     dataset_options=freeze_options({"nested": {"a": [1, 2]}, "pairs": [["x", 1]]}))
    data = json.loads(canonical_json(spec.to_dict()))
    assert data["dataset_options"] == {"nested": {"a": [1, 2]}, "pairs": [["x", 1]]}
    again = RunSpec.from_dict(data)
    assert again == spec and again.run_id == spec.run_id
    assert spec.model_kwargs == {"widths": [8, 8]}


def test_ids_of_specs_without_new_fields_are_what_version_1_gave(make_spec):
    # computed with normbench/spec.py before `batching` existed (commit 49998ad)
    assert make_spec().run_id == "8890037b09ffaa75"
    assert "batching" not in make_spec().to_dict()


def test_batching_changes_the_id_and_round_trips(make_spec):
    base = make_spec()
    sorted_batches = make_spec(batching=freeze_options({"classes_per_batch": 2}))
    assert sorted_batches.run_id != base.run_id
    assert sorted_batches.to_dict()["batching"] == {"classes_per_batch": 2}
    again = RunSpec.from_dict(json.loads(canonical_json(sorted_batches.to_dict())))
    assert again == sorted_batches and again.batching_kwargs == {"classes_per_batch": 2}
    assert RunSpec.from_dict(base.to_dict()).batching == ()
    assert base.batching_label == "iid" and sorted_batches.batching_label == "classes_per_batch=2"
