# The lock: requirements.lock pins every package of the development
# environment (runtime, client, dev and loadtest extras, build backend) with
# hashes. `make install` installs only from it; `make lock` regenerates it
# after a change to pyproject.toml's dependencies (with a pinned uv, from
# PyPI), for CPython 3.11 on x86_64 Linux like the machines here.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv

.PHONY: lock

# uv only writes the lock; nothing installs through it
$(UV): $(STAMP)
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'

lock: $(UV)
	$(UV) pip compile pyproject.toml mk/build-requirements.in --extra dev --extra loadtest \
	  --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --no-header --quiet -o $(LOCK)
	@echo "wrote $(LOCK); commit it, then make install picks it up"
