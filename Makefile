# berth's build, test and demo entry points. Everything a target needs is set here, not
# in the caller's environment, so that `make test` behaves the same on a laptop, on CI
# and on a fresh Debian machine with only Go installed.

GO ?= go

# VCS stamping runs git inside the module; a checkout owned by another user (CI clones,
# containers) makes that fail with "dubious ownership". The version is stamped below.
export GOFLAGS := -buildvcs=false

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Each fuzz target runs a number of inputs (about 15 s each on the project's machine),
# not a time: Go 1.26's fuzz coordinator can fail a run that found nothing with
# "context deadline exceeded" when a timed -fuzztime ends (go.dev/issue/75804, fixed in
# Go 1.27). FUZZTIME=30s (or 1000000x) overrides every target's budget.
FUZZTIME ?=

# go test -fuzz passes quietly when no target matches, so a renamed target would stop
# being fuzzed without anyone noticing: look each one up first.
define fuzz_target
	@$(GO) test $(1) -list '^$(2)$$' | grep -qx '$(2)' || { echo 'make: fuzz target $(2) not found in $(1)' >&2; exit 1; }
	$(GO) test $(1) -run '^$$' -fuzz '^$(2)$$' -fuzztime $(or $(FUZZTIME),$(3))
endef

.PHONY: all build install dist test deps vet unit fuzz demo demo-clean lab-up lab-down bench clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/berth ./cmd/berth-logdriver

# Where `make install` puts things (README "Install"); DESTDIR stages them elsewhere.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSTEMDDIR ?= /lib/systemd/system
ETCDIR ?= /etc
GOARCH := $(shell $(GO) env GOARCH)

# The daemon's settings file is the operator's once installed: never overwritten.
install: build
	install -D -m 0755 bin/berth $(DESTDIR)$(BINDIR)/berth
	install -D -m 0755 bin/berth-logdriver $(DESTDIR)$(BINDIR)/berth-logdriver
	install -d $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(ETCDIR)/berth
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@ETCDIR@|$(ETCDIR)|g' packaging/berth.service > $(DESTDIR)$(SYSTEMDDIR)/berth.service
	[ -e $(DESTDIR)$(ETCDIR)/berth/daemon.yaml ] || install -m 0644 packaging/daemon.yaml $(DESTDIR)$(ETCDIR)/berth/daemon.yaml
	bin/berth docs $(DESTDIR)$(MANDIR)/man1
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	bin/berth completion bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/berth
	bin/berth completion zsh > $(DESTDIR)$(DATADIR)/zsh/site-functions/_berth
	bin/berth completion fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/berth.fish
	@echo 'berth installed; start it with: systemctl daemon-reload && systemctl enable --now berth'

# The release tarball: the install tree, to unpack at / (README "Install").
dist:
	rm -rf dist/root
	$(MAKE) install DESTDIR=$(CURDIR)/dist/root
	tar -C dist/root -czf dist/berth-$(VERSION)-linux-$(GOARCH).tar.gz .

# The README's test command: what .ci/run runs. Tests whose prerequisites are missing
# fail instead of skipping, so a green run always means everything ran.
test: export BERTH_REQUIRE_INTEGRATION := 1
test: deps vet unit fuzz

deps:
	scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test ./...

fuzz:
	$(call fuzz_target,./spec,FuzzParseConstraint,200000x)
	$(call fuzz_target,./spec,FuzzLoad,20000x)
	$(call fuzz_target,./spec,FuzzCutDecode,250000x)

# The main job, as root on a fresh Debian machine: validate the examples as GitOps
# would (from the repository's HEAD, by folder discovery), show the plan from the web
# example's previous version to the current one (diff exits 1 when there are
# differences, which is what the demo expects), then the whole mission on one machine
# (scripts/demo.sh): a lab of 3 nodes, the examples that need no registry pushed to it
# with git, requests through the routing mesh. Running it again converges to the same
# state; `make demo-clean` removes what it made.
demo: build
	bin/berth validate --repo . --path examples
	@echo
	bin/berth diff -c examples/web/compose.yaml --against examples/web/compose.previous.yaml; \
		rc=$$?; if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then exit $$rc; fi
	@echo
	scripts/demo.sh

demo-clean: build
	scripts/demo.sh clean

# A multi-node cluster on this machine (as root): N nodes, each a daemon in a network
# namespace of its own (scripts/lab.sh, README "Multi-node lab"). `make lab-down` removes it.
N ?= 3
lab-up:
	scripts/lab.sh up $(N)

lab-down:
	scripts/lab.sh down

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./spec ./applier

clean:
	rm -rf bin dist
