#!/usr/bin/env python3
"""Checks deploy/kubernetes/ (run by validate.sh, which adds `tollgate check`):

- every kustomization's resources exist, and every manifest is in a kustomization;
- every resource of each example validates, strictly, against each Kubernetes version
  given (kubernetes-validate); a kind without a schema is an error, except the PodMonitor,
  whose fields are checked here;
- what the examples promise: tollgate is a native sidecar with the full securityContext,
  the probes (startup, liveness /healthz, readiness /readyz) on the admin port, resources,
  its config from a ConfigMap mounted as a folder, a grace period above the drain timeout,
  Prometheus annotations on the admin port; the Service targets tollgate's port only and
  the inbound upstream is loopback; PodMonitor and PodDisruptionBudget select the pods;
  workload identity pods have an annotated service account and no Secret at all;
- no ConfigMap holds a secret value, and no example carries a Secret's data;
- writes each embedded tollgate config (and the environment its pod gives it) to OUTDIR.

Usage: validate.py [--versions 1.29.0,1.31.0] [--configs-only] OUTDIR
"""

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_DRAIN_SECONDS = 10
# What the AKS workload identity webhook injects (values from the service account).
WEBHOOK_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"
SECRET_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."), "a JWT"),
    (re.compile(r"(?im)^\s*(client_secret|password|secret|api_key)\s*:\s*['\"]?[^\s{'\"]"), "an inline secret"),
    (re.compile(r"(?i)(AccountKey|SharedAccessKey)="), "a connection string key"),
]
SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
}

errors = []


def fail(where, message):
    errors.append(f"{where}: {message}")


def load_all(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def kustomization(folder):
    return load_all(folder / "kustomization.yaml")[0]


def resources(folder, seen=None):
    """The resources a kustomization renders: (file, resource), bases first, each file once."""
    seen = set() if seen is None else seen
    out = []
    for entry in kustomization(folder).get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            if not (path / "kustomization.yaml").exists():
                fail(folder / "kustomization.yaml", f"{entry} has no kustomization.yaml")
                continue
            out += resources(path, seen)
        elif not path.exists():
            fail(folder / "kustomization.yaml", f"{entry} does not exist")
        elif path not in seen:
            seen.add(path)
            out += [(path, r) for r in load_all(path)]
    return out


def folders():
    return sorted(p.parent for p in HERE.rglob("kustomization.yaml"))


def examples():
    """Kustomizations no other one includes: the ones to apply."""
    included = set()
    for folder in folders():
        for entry in kustomization(folder).get("resources", []):
            if (folder / entry).is_dir():
                included.add((folder / entry).resolve())
    return [f for f in folders() if f.resolve() not in included]


def check_listed():
    for folder in folders():
        listed = {(folder / e).resolve() for e in kustomization(folder).get("resources", [])}
        for path in sorted(folder.glob("*.yaml")):
            if path.name != "kustomization.yaml" and path.resolve() not in listed:
                fail(path, "not listed in its folder's kustomization.yaml: never applied or validated")


def check_schemas(example, rendered, versions):
    from kubernetes_validate import utils

    for path, resource in rendered:
        where = f"{path.relative_to(HERE)} {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        for version in versions:
            try:
                utils.validate(resource, version, strict=True)
            except utils.ValidationError as e:
                fail(where, f"Kubernetes {version}: {'.'.join(map(str, e.path))}: {e.message}")
            except utils.SchemaNotFoundError as e:
                if resource.get("kind") != "PodMonitor":
                    fail(where, e.message)
            except utils.VersionNotSupportedError:
                fail(where, f"kubernetes-validate does not know Kubernetes {version}")


def by_kind(rendered, kind):
    return [(p, r) for p, r in rendered if r.get("kind") == kind]


def selects(selector, labels):
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def port_of(listen):
    return int(str(listen).rsplit(":", 1)[1])


def tollgate_config(rendered, pod, sidecar, where):
    """The ConfigMap key tollgate's -c names, through its volume mount; parsed."""
    args = sidecar.get("args", [])
    path = args[args.index("-c") + 1] if "-c" in args else None
    if not path:
        fail(where, "tollgate has no -c CONFIG argument")
        return None, None
    for mount in sidecar.get("volumeMounts", []):
        if mount["mountPath"] == path:
            fail(where, f"{mount['name']} is mounted with subPath: a ConfigMap change never reaches it")
            return None, None
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            if "subPath" in mount:
                fail(where, f"{mount['name']} is mounted with subPath: a ConfigMap change never reaches it")
            if not mount.get("readOnly"):
                fail(where, f"{mount['name']} is not mounted readOnly")
            key = path[len(mount["mountPath"].rstrip("/")) + 1 :]
            volume = next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), {})
            name = volume.get("configMap", {}).get("name")
            if not name:
                fail(where, f"{mount['name']} is not a ConfigMap volume")
                return None, None
            for _, cm in by_kind(rendered, "ConfigMap"):
                if cm["metadata"]["name"] == name and key in cm.get("data", {}):
                    return cm, cm["data"][key]
            fail(where, f"ConfigMap {name} with key {key} is not in the example")
            return None, None
    fail(where, f"no volume is mounted where {path} is")
    return None, None


def check_sidecar(where, sidecar):
    if sidecar.get("restartPolicy") != "Always":
        fail(where, "tollgate is not a native sidecar (initContainers, restartPolicy: Always)")
    context = sidecar.get("securityContext", {})
    for key, value in SECURITY_CONTEXT.items():
        if context.get(key) != value:
            fail(where, f"tollgate securityContext.{key} is not {value}")
    if context.get("capabilities", {}).get("drop") != ["ALL"]:
        fail(where, "tollgate securityContext.capabilities.drop is not [ALL]")
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "tollgate securityContext.seccompProfile is not RuntimeDefault")
    resources = sidecar.get("resources", {})
    if not resources.get("requests", {}).get("cpu") or not resources.get("requests", {}).get("memory"):
        fail(where, "tollgate has no cpu and memory requests")
    if not resources.get("limits", {}).get("memory"):
        fail(where, "tollgate has no memory limit")
    ports = {p["name"]: p["containerPort"] for p in sidecar.get("ports", [])}
    for probe, path in [("startupProbe", None), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = sidecar.get(probe, {}).get("httpGet")
        if not get:
            fail(where, f"tollgate has no {probe} (httpGet)")
        elif path and get.get("path") != path:
            fail(where, f"tollgate {probe} is not on {path}")
        elif get.get("port") not in ports:
            fail(where, f"tollgate {probe} port {get.get('port')} is not one of its named ports")
    return ports


def check_workload(example, rendered, path, deployment, out):
    where = f"{path.relative_to(HERE)} Deployment/{deployment['metadata']['name']}"
    template = deployment["spec"]["template"]
    pod, labels = template["spec"], template["metadata"].get("labels", {})
    sidecar = next((c for c in pod.get("initContainers", []) if c["name"] == "tollgate"), None)
    if sidecar is None:
        fail(where, "no init container named tollgate")
        return
    ports = check_sidecar(where, sidecar)
    configmap, text = tollgate_config(rendered, pod, sidecar, where)
    if text is None:
        return
    config = yaml.safe_load(text)
    admin = port_of(config.get("admin", {}).get("listen", ":0"))
    admin_names = [n for n, p in ports.items() if p == admin]
    if not admin_names:
        fail(where, f"the admin port {admin} is not a named port of tollgate")
    annotations = template["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(admin):
        fail(where, f"prometheus.io/scrape and prometheus.io/port: \"{admin}\" are not set")
    drain = config.get("shutdown", {}).get("drain_timeout_seconds", DEFAULT_DRAIN_SECONDS)
    app_stop = max(
        [c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0) for c in pod["containers"]]
        or [0]
    )
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= drain + app_stop:
        fail(where, f"terminationGracePeriodSeconds {grace} is not above the app's preStop "
                    f"({app_stop} s) plus tollgate's drain timeout ({drain} s)")
    for app in pod["containers"]:
        if app.get("ports"):
            fail(where, f"the app container {app['name']} declares ports: only tollgate's may be reachable")
    if "inbound" in config:
        check_inbound(where, rendered, config["inbound"], ports, labels)
    if "outbound" in config:
        check_outbound(where, pod, config["outbound"])
    if labels.get("azure.workload.identity/use") == "true":
        check_workload_identity(where, rendered, pod)
    for kind in ["PodDisruptionBudget", "PodMonitor"]:
        matching = [r for _, r in by_kind(rendered, kind) if selects(r["spec"].get("selector", {}), labels)]
        if not matching:
            fail(where, f"no {kind} selects this pod")
        for monitor in matching if kind == "PodMonitor" else []:
            for endpoint in monitor["spec"].get("podMetricsEndpoints", []):
                if endpoint.get("port") not in admin_names:
                    fail(where, f"PodMonitor port {endpoint.get('port')} is not tollgate's admin port")
    write_config(example, configmap, text, pod, rendered, out)


def check_inbound(where, rendered, inbound, ports, labels):
    upstream = str(inbound.get("upstream", ""))
    if not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])[:/]", upstream):
        fail(where, f"inbound.upstream {upstream} is not the app on loopback")
    listen = port_of(inbound["listen"])
    names = {n for n, p in ports.items() if p == listen}
    services = [r for _, r in by_kind(rendered, "Service") if selects({"matchLabels": r["spec"].get("selector", {})}, labels)]
    if not services:
        fail(where, "no Service selects the pod")
    for service in services:
        for port in service["spec"].get("ports", []):
            if port.get("targetPort") not in names and port.get("targetPort") != listen:
                fail(where, f"Service {service['metadata']['name']} targets {port.get('targetPort')}, "
                            "not tollgate's inbound port")
    served = "https" if inbound.get("tls") else "http"
    for name in names:
        if not name.startswith(served + "-"):
            fail(where, f"port {name} does not say it serves {served}")


def check_outbound(where, pod, outbound):
    listen = outbound["listen"]
    if not str(listen).startswith("127.0.0.1:"):
        fail(where, f"outbound.listen {listen} is not loopback")
    for app in pod["containers"]:
        env = {e["name"]: e.get("value") for e in app.get("env", [])}
        if env.get("HTTP_PROXY") != f"http://{listen}" or not env.get("NO_PROXY"):
            fail(where, f"the app container {app['name']} has no HTTP_PROXY=http://{listen} and NO_PROXY")


def check_workload_identity(where, rendered, pod):
    name = pod.get("serviceAccountName")
    accounts = [r for _, r in by_kind(rendered, "ServiceAccount") if r["metadata"]["name"] == name]
    annotations = accounts[0]["metadata"].get("annotations", {}) if accounts else {}
    if "azure.workload.identity/client-id" not in annotations:
        fail(where, f"service account {name} is missing or has no azure.workload.identity/client-id")
    if by_kind(rendered, "Secret") or "secretKeyRef" in yaml.safe_dump(pod) or "secretName" in yaml.safe_dump(pod):
        fail(where, "workload identity needs no secret, yet the example has one")


def check_no_secret_values(rendered):
    for path, resource in rendered:
        where = f"{path.relative_to(HERE)} {resource.get('kind')}/{resource['metadata'].get('name')}"
        if resource.get("kind") == "Secret" and (resource.get("data") or resource.get("stringData")):
            fail(where, "an example carries a Secret's data: create Secrets out of band")
        if resource.get("kind") != "ConfigMap":
            continue
        for key, value in {**resource.get("data", {}), **resource.get("binaryData", {})}.items():
            if re.search(r"(?i)(secret|password|passwd|private|\.key$|token$)", key):
                fail(where, f"key {key} looks like a secret: Secrets belong in a Secret")
            for pattern, what in SECRET_PATTERNS:
                if pattern.search(str(value)):
                    fail(where, f"key {key} holds {what}")


def write_config(example, configmap, text, pod, rendered, out):
    """The config as embedded (so check's line numbers match), and NAME.env: the variables
    the workload identity webhook would inject into this pod, if it mutates it."""
    name = f"{example.name}--{configmap['metadata']['name']}.yaml"
    (out / name).write_text(text)
    env = {}
    account = pod.get("serviceAccountName")
    for _, sa in by_kind(rendered, "ServiceAccount"):
        annotations = sa["metadata"].get("annotations", {})
        if sa["metadata"]["name"] == account and "azure.workload.identity/client-id" in annotations:
            env = {
                "AZURE_CLIENT_ID": annotations["azure.workload.identity/client-id"],
                "AZURE_TENANT_ID": annotations.get("azure.workload.identity/tenant-id", ""),
                "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
                "AZURE_FEDERATED_TOKEN_FILE": WEBHOOK_TOKEN_FILE,
            }
    (out / (name + ".env")).write_text("".join(f"{k}={v}\n" for k, v in env.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", default="1.29.0,1.31.0")
    parser.add_argument("--configs-only", action="store_true", help="only write the embedded configs")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    versions = args.versions.split(",")
    check_listed()
    for example in examples():
        rendered = resources(example)
        if not args.configs_only:
            check_schemas(example, rendered, versions)
            check_no_secret_values(rendered)
        deployments = by_kind(rendered, "Deployment")
        if not deployments:
            fail(example, "no Deployment")
        for path, deployment in deployments:
            check_workload(example, rendered, path, deployment, args.out)
        print(f"{example.relative_to(HERE)}: {len(rendered)} resources"
              + ("" if args.configs_only else f", validated against Kubernetes {', '.join(versions)}"))
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
