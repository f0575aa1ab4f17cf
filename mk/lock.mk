# The lock: requirements.lock pins every package of the development
# environment (the three distributions under dists/ with the client's stack
# extra, the root's dev and loadtest extras, the build backend) with hashes.
# `make install` installs only from it; `make lock` regenerates it after a
# change to the dependencies of any pyproject.toml (with a pinned uv, from
# PyPI), for CPython 3.11 on x86_64 Linux like the machines here.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv

.PHONY: lock

# uv only writes the lock; nothing installs through it. It needs the venv, not
# the installed project: after a dependency change `make install` fails at
# pip check until the lock is written, so the lock cannot wait for it.
$(UV):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'

# the repository's own distributions are resolved from mk/workspace.in (paths)
# and not written to the lock: make install puts them in editable
WORKSPACE_DISTS := dynafed-dev dynafed-contract dynafed-functions dynafed-client

lock: $(UV)
	$(UV) pip compile pyproject.toml mk/build-requirements.in mk/workspace.in --extra dev --extra loadtest \
	  $(addprefix --no-emit-package ,$(WORKSPACE_DISTS)) --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --no-header --quiet -o $(LOCK)
	@echo "wrote $(LOCK); commit it, then make install picks it up"
