# Container images and Knative deployment (included by the top Makefile).
#
#   make images                 build the function images (docker/podman/buildah)
#   make knative-setup          install pinned Knative on the current kubectl context
#   make deploy [OVERLAY=dev]   apply an overlay (dev | production | canary)
#   make undeploy               delete it again (keeps the namespace and its Secret)
#   make manifests-render       print the manifests deploy would apply (no cluster)
#   make manifests-check        offline manifest validation (tests/manifests)
#
# See docs/knative.md.

VENV ?= .venv
PY ?= $(VENV)/bin/python

IMAGE_REGISTRY ?= registry.example.org/dynafed
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
OVERLAY ?= dev
NAMESPACE ?= dynafed-fn
KNATIVE_INGRESS ?= kourier

KNATIVE_ENV = OVERLAY='$(OVERLAY)' NAMESPACE='$(NAMESPACE)' \
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)'

.PHONY: images images-push knative-setup knative-setup-dry-run deploy undeploy \
	manifests-render manifests-check

images:
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)' knative/scripts/build-images.sh

images-push:
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)' knative/scripts/build-images.sh --push

knative-setup:
	knative/cluster/install.sh --ingress '$(KNATIVE_INGRESS)'

knative-setup-dry-run:
	knative/cluster/install.sh --dry-run --ingress '$(KNATIVE_INGRESS)'

deploy:
	$(KNATIVE_ENV) knative/scripts/deploy.sh apply

undeploy:
	$(KNATIVE_ENV) knative/scripts/deploy.sh delete

manifests-render:
	@$(KNATIVE_ENV) knative/scripts/deploy.sh render

manifests-check:
	$(PY) -m pytest tests/manifests -q
