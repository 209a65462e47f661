# Odyssey: the two commands are `make demo` and `make test`. Both install what
# they need first (scripts/install-deps), then build.
SWIFT      ?= swift
PREFIX     ?= /usr/local
BUILD      := build
DEBUG_BIN   = $(shell $(SWIFT) build --show-bin-path)
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: all deps build vm-kit xen-kit demo test test-xen bench bench-xen install install-sdk install-qubes-compat clean help policy-oracle

all: build

help:
	@echo "make demo         install deps, build, run the guided tour"
	@echo "make test         install deps, build, run every test"
	@echo "make bench        release build, print the benchmark table (bars vs baselines)"
	@echo "                  GROUPS=\"policy domains\" for some groups: host policy admin domains broker addons hostile vm"
	@echo "make bench-xen    (root) the vchan-xen bars, in dom0 under Xen (the Xen tier), beside raw libxenvchan"
	@echo "make install      install odysseyd, ody, plugins and the plugin SDK under PREFIX=$(PREFIX)"
	@echo "make install-sdk  install only the plugin header and odyssey-plugin.pc"
	@echo "make install-qubes-compat  make install, plus /usr/lib/qubes/qrexec-client for Qubes' qvm-run"
	@echo "make vm-kit       (root, where QEMU is installed) build the guest kernel pool, start libvirtd"
	@echo "make test-xen     (root) the Xen tier alone: Xen under QEMU, the Xen suites in dom0"
	@echo "make xen-kit      (root, where QEMU is installed) build the Xen tier's kit (scripts/xen-kit)"
	@echo "make policy-oracle regenerate the policy corpus Qubes' own engine answered (git, python3)"

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build
	@scripts/build-addons $(DEBUG_BIN)
	@scripts/stage-plugins $(DEBUG_BIN) $(BUILD)/plugins

# Where QEMU is installed: the guest kernel pool VM domains boot (scripts/guest-kit,
# a no-op once built) and libvirtd started by hand (scripts/libvirtd-up).
vm-kit:
	@if command -v qemu-system-x86_64 >/dev/null 2>&1; then scripts/guest-kit && scripts/libvirtd-up; \
	else echo "make: qemu-system-x86_64 not installed: no guest kit, VM domains are skipped"; fi

# The Xen tier's kit (Xen, its tools, dom0 and domU kernels: scripts/xen-kit, a
# no-op once built, one directory per version of its inputs); make test's
# XenTierTests and make test-xen (scripts/xen-tests) boot it.
xen-kit:
	@if command -v qemu-system-x86_64 >/dev/null 2>&1; then scripts/xen-kit; \
	else echo "make: qemu-system-x86_64 not installed: no Xen kit, the Xen tier is skipped"; fi

demo: build vm-kit
	@scripts/demo $(DEBUG_BIN)

test: build vm-kit xen-kit
	$(SWIFT) build --build-tests
	# Every test is XCTest; a hung test fails the run after 40 min instead of stalling CI.
	# Not run here, because they run elsewhere: the Xen bodies run in dom0
	# (IntegrationTests.XenTierTests, below), the child-process halves are run
	# by their parents, and the native timings are benchmarks (make bench).
	ODYSSEY_BUILD_DIR=$(DEBUG_BIN) timeout 2400 $(SWIFT) test --skip-build --disable-swift-testing \
		--skip 'UnderXen$$' --skip 'XenDescribedDomUTests' --skip 'XenDomUTests' --skip 'XenDomainTests' \
		--skip 'LazyLoadChild' --skip 'testHelperStartsDomainThenWaitsForDeath' --skip 'BenchmarkTests'

# Regenerates Tests/Fixtures/policy-oracle/cases.json: our generated policy sets and requests,
# answered by Qubes' own engine (qubes-core-qrexec, cloned outside the tree; QubesOracleTests
# replays it in make test, which needs neither git nor Python).
policy-oracle:
	scripts/policy-oracle

# The Xen tier alone: one boot of Xen under QEMU, every Xen suite in dom0
# (scripts/xen-tests; make test runs the same through IntegrationTests.XenTierTests).
test-xen: build vm-kit xen-kit
	$(SWIFT) build --build-tests
	scripts/xen-tests $(DEBUG_BIN)

bench: deps vm-kit
	$(SWIFT) build -c release
	@scripts/build-addons $(RELEASE_BIN)
	@scripts/stage-plugins $(RELEASE_BIN) $(BUILD)/plugins-release
	ODYSSEY_BUILD_DIR=$(RELEASE_BIN) ODYSSEY_PLUGIN_DIR=$(BUILD)/plugins-release $(RELEASE_BIN)/odyssey-bench $(GROUPS)

# The vchan-xen bars inside the Xen tier: the raw libxenvchan baseline is
# built here with cc (it is the library alone), then odyssey-bench xen runs in dom0.
bench-xen: deps xen-kit
	$(SWIFT) build -c release
	@scripts/stage-plugins $(RELEASE_BIN) $(BUILD)/plugins-release
	cc -O2 -Wall -o $(RELEASE_BIN)/xen-vchan-baseline Plugins/vchan-xen/Baseline/xen-vchan-baseline.c -lxenvchan -lxenstore
	ODYSSEY_BUILD_DIR=$(RELEASE_BIN) ODYSSEY_PLUGIN_DIR=$(CURDIR)/$(BUILD)/plugins-release \
		scripts/xen-run --timeout 1200 -- $(RELEASE_BIN)/odyssey-bench xen

install-sdk:
	install -d $(DESTDIR)$(PREFIX)/include/odyssey $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 Sources/PluginABI/include/odyssey_plugin.h $(DESTDIR)$(PREFIX)/include/odyssey/
	sed 's|@PREFIX@|$(PREFIX)|' Sources/PluginABI/odyssey-plugin.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/odyssey-plugin.pc

install: deps install-sdk
	$(SWIFT) build -c release
	scripts/build-addons $(RELEASE_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/odyssey/plugins
	install -m 755 $(RELEASE_BIN)/odysseyd $(RELEASE_BIN)/ody $(RELEASE_BIN)/odyssey-agent $(DESTDIR)$(PREFIX)/bin/
	scripts/stage-plugins $(RELEASE_BIN) $(DESTDIR)$(PREFIX)/lib/odyssey/plugins

# Qubes' own dom0 tools (qvm-run, qubesadmin's run_service) exec
# /usr/lib/qubes/qrexec-client: ody answers to that name (docs/qubes-compat.md).
install-qubes-compat: install
	install -d $(DESTDIR)/usr/lib/qubes
	ln -sf $(PREFIX)/bin/ody $(DESTDIR)/usr/lib/qubes/qrexec-client

clean:
	rm -rf $(BUILD) .build
