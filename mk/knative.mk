# Container images and Knative deployment (included by the top Makefile).
#
#   make images                 build the function images (docker/podman/buildah)
#   make knative-setup          install pinned Knative on the current kubectl context
#                               [KNATIVE_DOMAIN=example.org] [KNATIVE_KAFKA_BROKER=1]
#   make knative-setup-dry-run  print the commands knative-setup would run
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
# Empty: routes stay cluster-local and the check uses the cluster-local gateway.
KNATIVE_DOMAIN ?=
# 1: also install the Kafka Broker (the production overlay's Broker class).
KNATIVE_KAFKA_BROKER ?= 0
KNATIVE_SETUP_ARGS = --ingress '$(KNATIVE_INGRESS)' $(if $(KNATIVE_DOMAIN),--domain '$(KNATIVE_DOMAIN)') \
	$(if $(filter 1,$(KNATIVE_KAFKA_BROKER)),--kafka-broker)

KNATIVE_ENV = OVERLAY='$(OVERLAY)' NAMESPACE='$(NAMESPACE)' \
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)'

.PHONY: images images-push knative-setup knative-setup-dry-run deploy undeploy \
	manifests-render manifests-check

images:
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)' knative/scripts/build-images.sh

images-push:
	IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)' knative/scripts/build-images.sh --push

knative-setup:
	knative/cluster/install.sh $(KNATIVE_SETUP_ARGS)

knative-setup-dry-run:
	knative/cluster/install.sh --dry-run $(KNATIVE_SETUP_ARGS)

deploy:
	$(KNATIVE_ENV) knative/scripts/deploy.sh apply

undeploy:
	$(KNATIVE_ENV) knative/scripts/deploy.sh delete

manifests-render:
	@$(KNATIVE_ENV) knative/scripts/deploy.sh render

manifests-check:
	$(PY) -m pytest tests/manifests -q
