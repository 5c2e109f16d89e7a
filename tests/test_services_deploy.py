"""The cluster-launcher YAMLs pass Ray's own validation; the KubeRay manifests have the CRD's shape.

Ray's check is the one `ray up` runs (prepare_config fills defaults per provider, validate_config
applies ray-schema.json), so a typo or a wrong type fails here rather than on a real cluster.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_YAMLS = ["cluster/head_plus_two.yaml", "cluster/aws_head_plus_two.yaml"]


def _prepared(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((ROOT / name).read_text()))
    validate_config(config)
    return config


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_launcher_yaml_passes_ray_validation(name):
    config = _prepared(name)
    # Two worker nodes, always there.
    worker_types = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]] or [
        config["available_node_types"][config["head_node_type"]]
    ]
    assert sum(t["min_workers"] for t in worker_types) == 2
    assert config["max_workers"] == 2
    # The project is synced and installed on every node.
    assert "." in config["file_mounts"].values()
    assert any("pip install" in c and "-e" in c for c in config["setup_commands"])
    # Token authentication is on for every `ray start`, and the token is shipped to every node.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), key
    assert "~/.ray/auth_token" in config["file_mounts"]


def _start_flags(command: str) -> dict:
    words = shlex.split(command.split(";")[-1])
    return {w.split("=")[0]: (w.split("=", 1)[1] if "=" in w else True) for w in words if w.startswith("--")}


def test_local_yaml_declares_gpu_head_and_cpu_workers():
    config = _prepared("cluster/head_plus_two.yaml")
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) == 2 and config["provider"]["head_ip"]
    assert config["auth"]["ssh_user"] and config["auth"]["ssh_private_key"]
    head = _start_flags([c for c in config["head_start_ray_commands"] if "ray start" in c][0])
    worker = _start_flags([c for c in config["worker_start_ray_commands"] if "ray start" in c][0])
    assert "--head" in head and float(head["--num-gpus"]) >= 1
    assert float(worker["--num-gpus"]) == 0
    assert head["--dashboard-host"] == "127.0.0.1"


def test_aws_yaml_has_the_same_layout():
    config = _prepared("cluster/aws_head_plus_two.yaml")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    assert head["resources"]["GPU"] >= 1
    assert len(workers) == 1 and workers[0]["resources"].get("GPU", 0) == 0
    assert workers[0]["min_workers"] == workers[0]["max_workers"] == 2


def test_a_broken_launcher_yaml_is_rejected():
    """The validation is real: a wrong type or an unknown top-level key fails."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster/aws_head_plus_two.yaml").read_text())
    config["max_workers"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))
    config = yaml.safe_load((ROOT / "cluster/aws_head_plus_two.yaml").read_text())
    config["worker_start_commands"] = []
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


# --- KubeRay: field names of the ray.io/v1 CRDs (KubeRay v1.5+ API reference) -----------------------
# Required fields per object, and the fields the CRD knows (anything else is a typo the API server
# would prune or reject).
KUBERAY_FIELDS = {
    "RayClusterSpec": dict(
        required={"headGroupSpec"},
        known={"authOptions", "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
               "headGroupSpec", "headServiceAnnotations", "managedBy", "rayVersion", "suspend",
               "upgradeStrategy", "workerGroupSpecs"},
    ),
    "HeadGroupSpec": dict(
        required={"template"},
        known={"enableIngress", "headService", "rayStartParams", "serviceType", "template", "resources", "labels"},
    ),
    "WorkerGroupSpec": dict(
        required={"groupName", "template"},
        known={"groupName", "idleTimeoutSeconds", "maxReplicas", "minReplicas", "numOfHosts", "rayStartParams",
               "replicas", "scaleStrategy", "suspend", "template", "resources", "labels"},
    ),
    "RayJobSpec": dict(
        required={"entrypoint"},
        known={"activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy", "entrypoint",
               "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy", "metadata",
               "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes", "submissionMode", "submitterConfig",
               "submitterPodTemplate", "suspend", "ttlSecondsAfterFinished"},
    ),
}


def _check(obj: dict, kind: str) -> None:
    spec = KUBERAY_FIELDS[kind]
    assert isinstance(obj, dict), kind
    missing = spec["required"] - obj.keys()
    unknown = obj.keys() - spec["known"]
    assert not missing, f"{kind} lacks {missing}"
    assert not unknown, f"{kind} has unknown fields {unknown}"


def _check_pod_template(template: dict, gpus: bool) -> None:
    containers = template["spec"]["containers"]
    assert containers and all(c["name"] and c["image"] for c in containers)
    limits = containers[0]["resources"]["limits"]
    assert ("nvidia.com/gpu" in limits) == gpus
    assert all(isinstance(v, (str, int)) for v in limits.values()), "quantities are scalars"


def _check_raycluster_spec(spec: dict) -> None:
    _check(spec, "RayClusterSpec")
    assert spec["authOptions"]["mode"] == "token"
    major, minor = (int(x) for x in spec["rayVersion"].split(".")[:2])
    assert (major, minor) >= (2, 52), "token auth needs Ray >= 2.52"
    head = spec["headGroupSpec"]
    _check(head, "HeadGroupSpec")
    assert all(isinstance(v, str) for v in head["rayStartParams"].values()), "rayStartParams values are strings"
    _check_pod_template(head["template"], gpus=True)
    assert len(spec["workerGroupSpecs"]) == 1
    for group in spec["workerGroupSpecs"]:
        _check(group, "WorkerGroupSpec")
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["replicas"] == 2
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
        _check_pod_template(group["template"], gpus=False)


def test_raycluster_manifest_has_kuberay_shape():
    manifest = yaml.safe_load((ROOT / "deploy/raycluster.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    assert manifest["metadata"]["name"]
    _check_raycluster_spec(manifest["spec"])


def test_rayjob_manifest_runs_the_entrypoint():
    manifest = yaml.safe_load((ROOT / "deploy/rayjob.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    spec = manifest["spec"]
    _check(spec, "RayJobSpec")
    words = shlex.split(spec["entrypoint"])
    assert words[:3] == ["python", "-m", "services.train"]
    config_path = words[words.index("--config") + 1]
    from xrdgen.config import load_config

    load_config(ROOT / config_path)  # the config the job runs is valid
    yaml.safe_load(spec["runtimeEnvYAML"])
    _check_raycluster_spec(spec["rayClusterSpec"])


def test_dockerfile_installs_the_project():
    lines = [l.strip() for l in (ROOT / "deploy/Dockerfile").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0].startswith("FROM rayproject/ray:")
    import ray

    assert ray.__version__ in lines[0], "image Ray must match the client's Ray"
    copied = {l.split()[-2].rstrip("/") for l in lines if l.startswith("COPY")}
    for package in ("xrdgen", "models", "services", "configs"):
        assert package in copied and (ROOT / package).is_dir()
    assert any("pip install" in l and "-e ." in l for l in lines)
