# scout-mcp: build, test, lint and demo entry points. Every recipe works from a clean clone.

CARGO ?= cargo

.PHONY: build test test-deps lint demo clean

build:
	$(CARGO) build --release

# The integration tests start real OpenSSH servers on loopback (DESIGN.md §4). .ci/run knows
# what to install when something is missing (as root) and makes sshd's /run/sshd.
test-deps:
	bash .ci/run deps

# Plain `cargo test` (unit, integration and doc tests; examples are built): --all-targets
# would also run each bench's main(), i.e. the whole benchmark, in a debug build. Test
# threads mostly wait on SSH round trips, so 4 of them keep 2 cores busy. --no-fail-fast:
# one run reports every failing test binary, not just the first.
test: test-deps
	$(CARGO) test --no-fail-fast -- --test-threads=4

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The demo starts a real sshd fleet and drives the release binary, which `cargo run
# --example` alone would not build.
demo: test-deps
	$(CARGO) build --release
	$(CARGO) run --release --example demo

clean:
	$(CARGO) clean
