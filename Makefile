# scout-mcp: build, test, lint and demo entry points. Every recipe works from a clean clone.

CARGO ?= cargo

.PHONY: build static vendor check-offline test test-legacy test-deps lint demo bench fuzz clean inspector

build:
	$(CARGO) build --release

# The static binary for jump hosts (README: "Static binary for jump hosts"): glibc linked in
# (crt-static), OpenSSL, libssh2 and zlib built from source and linked in (Cargo.toml's ssh2
# and libz-sys features), stripped. --target keeps RUSTFLAGS off build scripts and gives the
# binary its own directory, so the normal release build (`make bench`) keeps its debug info.
#   make static                the binary: target/x86_64-unknown-linux-gnu/release/scout-mcp
#   make static OFFLINE=1      the same from vendor/ (`make vendor` first), no registry touched
#   make static LEGACY_SHA1=1  also speaks SHA-1 to old servers: a separate binary under
#                              target/legacy-sha1/ so it is never shipped by mistake
STATIC_TARGET = x86_64-unknown-linux-gnu
STATIC_FLAGS = --release --target $(STATIC_TARGET) \
	--config profile.release.strip=true --config profile.release.debug=false
STATIC_ENV = RUSTFLAGS='-C target-feature=+crt-static'
STATIC_DIR = target

# cargo's source replacement, given on the command line so that only OFFLINE=1 builds use
# vendor/; --frozen fails rather than touch the network or change Cargo.lock.
ifeq ($(OFFLINE),1)
OFFLINE_FLAGS = --frozen \
	--config 'source.crates-io.replace-with="vendored-sources"' \
	--config 'source.vendored-sources.directory="$(CURDIR)/vendor"'
endif

# libssh2 compiles its SHA-1 algorithms out unless these are defined, and only the C
# compiler's flags reach its build (the cc crate reads CFLAGS_<target>); the cargo feature
# adds them to the preferences, last, and checks they are there. Own target dir: changing
# C flags rebuilds OpenSSL, which must not happen back and forth with the default build.
LEGACY_CFLAGS = -DLIBSSH2_KEX_SHA1_ENABLE -DLIBSSH2_RSA_SHA1_ENABLE -DLIBSSH2_HMAC_SHA1_ENABLE
LEGACY_FLAGS = --features legacy-sha1 --target-dir target/legacy-sha1
LEGACY_ENV = CFLAGS_x86_64_unknown_linux_gnu='$(LEGACY_CFLAGS)'
ifeq ($(LEGACY_SHA1),1)
STATIC_FLAGS += $(LEGACY_FLAGS)
STATIC_ENV += $(LEGACY_ENV)
STATIC_DIR = target/legacy-sha1
endif

static:
	$(STATIC_ENV) $(CARGO) build $(STATIC_FLAGS) $(OFFLINE_FLAGS)
	@ls -l $(STATIC_DIR)/$(STATIC_TARGET)/release/scout-mcp

# Every crate's source in vendor/ for offline builds (vendor/README.md). cargo vendor would
# delete vendor/ whole, README included: remove only the crate directories.
vendor:
	find vendor -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
	$(CARGO) vendor --quiet --locked --no-delete vendor >/dev/null

# Proves `make static OFFLINE=1` needs nothing but vendor/: a fresh, empty CARGO_HOME (no
# registry cache) and target dir, inside a network namespace with no network at all
# (unshare -n, as root). A full build from scratch: minutes, so never part of `make test`.
check-offline: vendor
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	unshare -n env CARGO_HOME="$$scratch/cargo-home" CARGO_TARGET_DIR="$$scratch/target" \
		$(MAKE) static OFFLINE=1 STATIC_DIR="$$scratch/target"

# The integration tests start real OpenSSH servers on loopback (DESIGN.md §4), and one drives
# scout-mcp with the official MCP Python SDK. .ci/run knows what to install when something is
# missing (packages as root; the SDK into target/mcp-venv) and makes sshd's /run/sshd.
test-deps:
	bash .ci/run deps

# Plain `cargo test` (unit, integration and doc tests; examples are built): --all-targets
# would also run each bench's main(), i.e. the whole benchmark, in a debug build. Test
# threads mostly wait on SSH round trips, so 4 of them keep 2 cores busy. --no-fail-fast:
# one run reports every failing test binary, not just the first, and the legacy build's
# tests run even when the main suite failed. tests/static_binary.rs runs the binary from
# `make static` in an empty chroot.
test: test-deps static
	status=0; \
	$(CARGO) test --no-fail-fast -- --test-threads=4 || status=1; \
	$(MAKE) test-legacy || status=1; \
	exit $$status

# The legacy-sha1 build against SHA-1-only sshd servers (tests/legacy_sha1.rs), in its own
# target dir with libssh2's SHA-1 defines.
test-legacy: test-deps
	$(LEGACY_ENV) $(CARGO) test $(LEGACY_FLAGS) --lib --test legacy_sha1 -- --test-threads=2

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features legacy-sha1 -- -D warnings

# The demo starts a real sshd fleet and drives the release binary, which `cargo run
# --example` alone would not build.
demo: test-deps
	$(CARGO) build --release
	$(CARGO) run --release --example demo

# Benchmarks (benches/scout/, a program, never run by `make test`): a real sshd fleet on
# loopback plus userspace delay lines for WAN latency; scout-mcp against bare ssh2 (the floor)
# and OpenSSH + ControlMaster, beside the Python original's published figures. Prints one
# markdown table and writes benches/results/latest.md and benches/results/scaling.svg.
# About 10 minutes; BENCH_QUICK=1 make bench is a short smoke run.
bench: test-deps
	$(CARGO) build --release
	$(CARGO) bench --bench scout

# Fuzzing (fuzz/, its own workspace; never part of `make test`). cargo-fuzz wants nightly -Z
# flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Each target runs for
# FUZZ_SECONDS from its committed seeds (fuzz/corpus/<target>/seed-*); what libFuzzer adds to
# the corpus and any crash (fuzz/artifacts/) stay untracked.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= jsonrpc scout_target ssh_config known_hosts restrict resource_uri
FUZZ_ENV = RUSTC_BOOTSTRAP=1

fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	cd fuzz && $(FUZZ_ENV) $(CARGO) fuzz build
	cd fuzz && failed=; for t in $(FUZZ_TARGETS); do \
		echo "=== fuzz target $$t: $(FUZZ_SECONDS) s ==="; \
		$(FUZZ_ENV) $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (see fuzz/artifacts/)"; exit 1; fi

# MCP Inspector's CLI, a second client this project did not write (pinned; installed from npm
# into target/inspector on first use; needs node and npm). Lists the release build's tools, or
# runs INSPECTOR_ARGS, e.g. INSPECTOR_ARGS='--method resources/read --uri hosts://list'.
# SCOUT_* and SSH_AUTH_SOCK are passed on with -e: like other SDK-based clients, the Inspector
# gives the server only a few variables of its own environment (HOME, PATH, USER, ...).
INSPECTOR_VERSION ?= 2.12.0
INSPECTOR = target/inspector/node_modules/.bin/mcp-inspector
INSPECTOR_ARGS ?= --method tools/list

inspector: build
	@test -x $(INSPECTOR) || npm install --no-audit --no-fund --prefix target/inspector \
		@modelcontextprotocol/inspector@$(INSPECTOR_VERSION)
	$(INSPECTOR) --cli $(CURDIR)/target/release/scout-mcp \
		$$(env | sed -n 's/^\(SCOUT_[A-Z_]*=.*\|SSH_AUTH_SOCK=.*\)$$/-e \1/p') $(INSPECTOR_ARGS)

clean:
	$(CARGO) clean
