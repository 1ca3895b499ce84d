"""What the tests (and bench/) share, in one place, always imported as `from tests.support import <module>`
or `from tests.support.<module> import <name>`:

- `procs`: free ports, real child processes (redis-server, the services), waiting with a deadline.
- `inference`: real FER2013 faces, the API and a worker as real processes, and their fixtures.
- `frontend`: dashboard results and a CSRF-aware login.
- `fake_api`: a small real HTTP server speaking the ingest API (the capture agent's tests).
- `join`: the /join page's browser marks and the fake camera's Y4M video.
- `tfserving_server`: a real gRPC TF Serving stand-in (also a script, and the compose stand-in image).
- `batches`: Hypothesis strategies for ingest payloads (fuzz tests).
- `dockerfiles`, `kustomize`, `compose`: Dockerfiles, Kustomize and Compose read without their tools.

Tests run from the repository root (`python -m pytest`); bench scripts as modules (`python -m bench.soak`).
"""
