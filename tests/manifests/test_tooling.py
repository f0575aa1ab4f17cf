"""The scripts around the manifests: knative/cluster/install.sh (dry-run, and
its real code path against a recording fake kubectl), the image builder's
engine detection, deploy.sh and the make targets. No cluster, no engine."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.manifests import project_facts as pf

INSTALL = pf.KNATIVE / "cluster" / "install.sh"
BUILD = pf.KNATIVE / "scripts" / "build-images.sh"
DEPLOY = pf.KNATIVE / "scripts" / "deploy.sh"
BASH = shutil.which("bash") or "/bin/bash"


def versions() -> dict[str, str]:
    out = {}
    for line in (pf.KNATIVE / "cluster" / "versions.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def release(repo: str, version: str, file: str) -> str:
    org = "knative-extensions" if repo.startswith(("net-", "eventing-kafka")) else "knative"
    return f"https://github.com/{org}/{repo}/releases/download/knative-v{version}/{file}"


def fake_bin(tmp_path: Path, scripts: dict[str, str]) -> dict[str, str]:
    """An environment whose PATH has only ``scripts`` (fakes) plus the basics."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("bash", "sh", "cat", "sed", "dirname", "basename", "mktemp", "rm", "tr", "ls",
                 "timeout", "sleep", "python3", "printf", "env"):
        found = shutil.which(tool)
        if found and not (bindir / tool).exists():
            (bindir / tool).symlink_to(found)
    for name, body in scripts.items():
        path = bindir / name
        path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
        path.chmod(0o755)
    return {"PATH": str(bindir), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def run(cmd: list[str], env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=pf.REPO)


# --- install.sh ----------------------------------------------------------------

def test_versions_are_pinned_and_consistent():
    v = versions()
    keys = ("KNATIVE_SERVING_VERSION", "KNATIVE_EVENTING_VERSION",
            "KNATIVE_NET_KOURIER_VERSION", "KNATIVE_NET_ISTIO_VERSION", "KNATIVE_EVENTING_KAFKA_VERSION")
    for key in keys:
        assert re.fullmatch(r"\d+\.\d+\.\d+", v[key]), key
    # Serving, Eventing and the networking layers are released as one minor.
    assert len({v[k].rsplit(".", 1)[0] for k in keys}) == 1
    assert v["HELLO_IMAGE"]


KUBECTL_MUST_NOT_RUN = """
echo "kubectl $*" >> "$HOME/kubectl.log"
exit 99
"""


@pytest.mark.parametrize("ingress", ["kourier", "istio"])
def test_install_dry_run_prints_the_pinned_release_urls_and_touches_nothing(tmp_path, ingress):
    env = fake_bin(tmp_path, {"kubectl": KUBECTL_MUST_NOT_RUN, "curl": "exit 99\n"})
    out = run([BASH, str(INSTALL), "--dry-run", "--ingress", ingress], env)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "kubectl.log").exists(), "dry-run invoked kubectl"
    v = versions()
    urls = set(re.findall(r"https://github\.com/\S+\.yaml", out.stdout))
    expected = {
        release("serving", v["KNATIVE_SERVING_VERSION"], "serving-crds.yaml"),
        release("serving", v["KNATIVE_SERVING_VERSION"], "serving-core.yaml"),
        release("eventing", v["KNATIVE_EVENTING_VERSION"], "eventing-crds.yaml"),
        release("eventing", v["KNATIVE_EVENTING_VERSION"], "eventing-core.yaml"),
        release("eventing", v["KNATIVE_EVENTING_VERSION"], "in-memory-channel.yaml"),
        release("eventing", v["KNATIVE_EVENTING_VERSION"], "mt-channel-broker.yaml"),
    }
    if ingress == "kourier":
        expected.add(release("net-kourier", v["KNATIVE_NET_KOURIER_VERSION"], "kourier.yaml"))
        assert "kourier.ingress.networking.knative.dev" in out.stdout
    else:
        expected |= {release("net-istio", v["KNATIVE_NET_ISTIO_VERSION"], "istio.yaml"),
                     release("net-istio", v["KNATIVE_NET_ISTIO_VERSION"], "net-istio.yaml")}
    assert urls == expected
    # The hello check: a ksvc, then curl through the cluster-local gateway with
    # the route's cluster-local host (a fresh cluster has no domain: the
    # external gateway would answer 404).
    assert v["HELLO_IMAGE"] in out.stdout
    local_gateway = {"kourier": "kourier-system svc/kourier-internal",
                     "istio": "istio-system svc/knative-local-gateway"}[ingress]
    assert f"+ kubectl port-forward -n {local_gateway} 18080:80" in out.stdout
    assert re.search(r"^\+ curl .*-H 'Host: hello\.knative-hello\.svc\.cluster\.local' http://127\.0\.0\.1:18080/$",
                     out.stdout, re.MULTILINE)
    assert "config-domain" not in out.stdout and "eventing-kafka" not in out.stdout
    manifests = re.findall(r"<<'EOF'\n(.*?)\nEOF", out.stdout, re.DOTALL)
    docs = [d for m in manifests for d in yaml.safe_load_all(m)]
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {("Service", "hello")}


def test_install_dry_run_with_a_domain_and_the_kafka_broker(tmp_path):
    env = fake_bin(tmp_path, {"kubectl": KUBECTL_MUST_NOT_RUN, "curl": "exit 99\n"})
    out = run([BASH, str(INSTALL), "--dry-run", "--domain", "knative.example.org", "--kafka-broker"], env)
    assert out.returncode == 0, out.stderr
    v = versions()
    for artifact in ("eventing-kafka-controller.yaml", "eventing-kafka-broker.yaml"):
        assert release("eventing-kafka-broker", v["KNATIVE_EVENTING_KAFKA_VERSION"], artifact) in out.stdout
    assert "configmap/config-domain -n knative-serving" in out.stdout and "knative.example.org" in out.stdout
    # the cluster-local check first, then the external gateway under the domain
    curls = re.findall(r"^\+ curl .*-H 'Host: ([^']+)'", out.stdout, re.MULTILINE)
    assert curls == ["hello.knative-hello.svc.cluster.local", "hello.knative-hello.knative.example.org"]
    assert "+ kubectl port-forward -n kourier-system svc/kourier 18080:80" in out.stdout


def test_install_rejects_unknown_ingress_and_arguments(tmp_path):
    env = fake_bin(tmp_path, {"kubectl": KUBECTL_MUST_NOT_RUN})
    assert run([BASH, str(INSTALL), "--dry-run", "--ingress", "nginx"], env).returncode == 2
    assert run([BASH, str(INSTALL), "--frobnicate"], env).returncode == 2
    assert run([BASH, str(INSTALL), "--dry-run", "--domain", "Not A Domain"], env).returncode == 2
    assert run([BASH, str(INSTALL), "--dry-run", "--no-eventing", "--kafka-broker"], env).returncode == 2


FAKE_KUBECTL = """
echo "kubectl $*" >> "$HOME/kubectl.log"
case "$*" in
  "config current-context") echo fake-cluster ;;
  "version") echo ok ;;
  *"apply -f -"*) cat >> "$HOME/applied.yaml" ;;
  *"get ksvc hello"*) printf 'http://hello.knative-hello.example.com' ;;
  *port-forward*) exec sleep 30 ;;
esac
exit 0
"""
# Like the real curl with --retry-connrefused against a port-forward started
# in the background: it gets its answer once the forward is up, i.e. once the
# fake kubectl has logged this check's port-forward (event-driven). Pure bash:
# the PATH of ``fake_bin`` has neither grep nor seq, and a loop over
# ``$(seq ...)`` without seq ran zero times, so curl did not wait and the
# script's kill could beat the forward's log line under load. The bound only
# guards against a hang, and says so rather than answering.
FAKE_CURL = """
count() {  # lines of file $2 starting with $1
  local n=0 line
  [ -f "$2" ] || { echo 0; return; }
  while IFS= read -r line; do [[ $line == "$1"* ]] && n=$((n + 1)); done < "$2"
  echo "$n"
}
want=$(( $(count "curl " "$HOME/curl.log") + 1 ))
for (( i = 0; i < 900; i++ )); do
  (( $(count "kubectl port-forward" "$HOME/kubectl.log") >= want )) && break
  sleep 0.1
done
if (( i == 900 )); then echo "fake curl: no port-forward logged" >&2; exit 7; fi
echo "curl $*" >> "$HOME/curl.log"
echo "Hello dynafed-fn!"
"""


def _kubectl_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("kubectl ")]


def test_install_real_path_runs_what_the_dry_run_prints(tmp_path):
    """The non-dry code path, against a recording fake kubectl and curl: it
    runs the same kubectl commands the dry-run lists, checks Host-routed
    hello-world output and cleans up."""
    env = fake_bin(tmp_path, {"kubectl": FAKE_KUBECTL, "curl": FAKE_CURL})
    real = run([BASH, str(INSTALL)], env, timeout=120)
    assert real.returncode == 0, real.stdout + real.stderr
    assert "hello check OK" in real.stdout
    log = (tmp_path / "kubectl.log").read_text()
    dry = run([BASH, str(INSTALL), "--dry-run"], fake_bin(tmp_path / "d", {"kubectl": KUBECTL_MUST_NOT_RUN}))
    # Dry-run lines are shell-quoted, may carry a heredoc marker or a comment.
    planned = [ln[2:].replace("'", "").replace(" <<EOF", "").split("   #")[0]
               for ln in dry.stdout.splitlines() if ln.startswith("+ kubectl ")]
    executed = [ln for ln in _kubectl_lines(log)
                if ln not in ("kubectl config current-context", "kubectl version")]
    assert [ln.replace("'", "") for ln in executed] == planned
    curls = (tmp_path / "curl.log").read_text()
    assert "-H Host: hello.knative-hello.svc.cluster.local http://127.0.0.1:18080/" in curls
    assert "port-forward -n kourier-system svc/kourier-internal 18080:80" in log
    assert "kind: Service" in (tmp_path / "applied.yaml").read_text()


def test_install_real_path_with_a_domain_checks_both_gateways(tmp_path):
    env = fake_bin(tmp_path, {"kubectl": FAKE_KUBECTL, "curl": FAKE_CURL})
    real = run([BASH, str(INSTALL), "--domain", "example.com", "--no-eventing"], env, timeout=120)
    assert real.returncode == 0, real.stdout + real.stderr
    log = (tmp_path / "kubectl.log").read_text()
    assert "patch configmap/config-domain -n knative-serving --type merge -p {\"data\":{\"example.com\":\"\"}}" in log
    curls = (tmp_path / "curl.log").read_text()
    assert "-H Host: hello.knative-hello.svc.cluster.local " in curls
    assert "-H Host: hello.knative-hello.example.com " in curls  # from the ksvc's status.url


def test_install_fails_when_hello_answers_wrongly(tmp_path):
    env = fake_bin(tmp_path, {"kubectl": FAKE_KUBECTL, "curl": "echo 'upstream connect error'\n"})
    out = run([BASH, str(INSTALL), "--no-eventing"], env, timeout=120)
    assert out.returncode == 1 and "hello check FAILED" in out.stderr


def test_install_refuses_without_a_kubectl_context(tmp_path):
    env = fake_bin(tmp_path, {"kubectl": 'echo "kubectl $*" >> "$HOME/kubectl.log"; '
                                         '[ "$1" = config ] && exit 1; exit 0\n', "curl": FAKE_CURL})
    out = run([BASH, str(INSTALL)], env)
    assert out.returncode == 1 and "no current kubectl context" in out.stderr
    assert _kubectl_lines((tmp_path / "kubectl.log").read_text()) == ["kubectl config current-context"]


# --- images ----------------------------------------------------------------------

def test_image_build_explains_when_no_builder_works(tmp_path):
    # A docker client without an engine, as on these machines: `docker info` fails.
    env = fake_bin(tmp_path, {"docker": '[ "$1" = info ] && exit 1; echo "docker $*" >> "$HOME/docker.log"\n'})
    out = run([BASH, str(BUILD)], env)
    assert out.returncode == 3
    assert "docker: installed" in out.stderr and "'docker info' fails" in out.stderr
    assert "podman: not installed" in out.stderr and "buildah: not installed" in out.stderr
    assert not (tmp_path / "docker.log").exists()


@pytest.mark.parametrize("builder", ["docker", "podman", "buildah"])
def test_image_build_uses_the_first_working_builder(tmp_path, builder):
    fakes = {b: '[ "$1" = info ] && exit 1; exit 0\n' for b in ("docker", "podman", "buildah")}
    fakes[builder] = f'echo "{builder} $*" >> "$HOME/build.log"\n'
    env = fake_bin(tmp_path, fakes) | {"IMAGE_REGISTRY": "reg.example/x", "IMAGE_TAG": "t1"}
    out = run([BASH, str(BUILD)], env)
    assert out.returncode == 0, out.stderr
    builds = [ln for ln in (tmp_path / "build.log").read_text().splitlines() if " info" not in ln]
    assert builds == [f"{builder} build -f functions/{fn}/Dockerfile -t reg.example/x/dynafed-fn-{fn}:t1 ."
                      for fn in pf.function_names()]


# --- deploy ----------------------------------------------------------------------

def _kubectl_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(tmp_path / "empty-kubeconfig")  # no contexts at all
    (tmp_path / "empty-kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    return env


def test_deploy_render_sets_namespace_and_images_without_a_cluster(tmp_path):
    env = _kubectl_env(tmp_path) | {"OVERLAY": "production", "NAMESPACE": "dynafed-test",
                                    "IMAGE_REGISTRY": "reg.example/x", "IMAGE_TAG": "abc123"}
    out = run([BASH, str(DEPLOY), "render"], env)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert {d["metadata"].get("namespace") for d in docs} == {"dynafed-test"}
    images = {c["image"] for d in docs if d["kind"] == "Service" and d["apiVersion"].startswith("serving")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {f"reg.example/x/dynafed-fn-{fn}:abc123" for fn in pf.function_names()}
    assert not list(pf.REPO.glob("knative/**/kustomization.yaml.*")), "deploy must not edit the repo"


@pytest.mark.parametrize("action", ["apply", "delete"])
def test_deploy_refuses_without_a_current_context(tmp_path, action):
    out = run([BASH, str(DEPLOY), action], _kubectl_env(tmp_path))
    assert out.returncode == 1
    assert f"refusing to {action}" in out.stderr and "no current context" in out.stderr


def test_deploy_rejects_an_unknown_overlay(tmp_path):
    out = run([BASH, str(DEPLOY), "render"], _kubectl_env(tmp_path) | {"OVERLAY": "staging"})
    assert out.returncode == 2 and "no overlay 'staging'" in out.stderr


def test_make_targets_are_wired(tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    out = run([make, "-s", "-n", "images", "deploy", "undeploy", "knative-setup", "manifests-check",
               "OVERLAY=canary", "NAMESPACE=ns1", "IMAGE_TAG=t9"], _kubectl_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "knative/scripts/build-images.sh" in out.stdout
    assert "OVERLAY='canary' NAMESPACE='ns1'" in out.stdout and "deploy.sh apply" in out.stdout
    assert "deploy.sh delete" in out.stdout and "knative/cluster/install.sh" in out.stdout
    assert "pytest tests/manifests" in out.stdout
    setup = run([make, "-s", "-n", "knative-setup-dry-run", "KNATIVE_DOMAIN=example.org", "KNATIVE_KAFKA_BROKER=1"],
                _kubectl_env(tmp_path))
    assert "install.sh --dry-run --ingress 'kourier' --domain 'example.org' --kafka-broker" in setup.stdout
