# numafollow: one non-recursive Makefile. `make check` and `make demo` install
# missing Debian packages first (deploy/install-deps.sh).
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
B       := build
CFLAGS  ?= -O2 -g
PKG_CONFIG ?= pkg-config
# The one version, as the programs print it (--version).
VERSION := $(shell sed -n 's/^\#define NF_VERSION[ \t]*"\(.*\)"/\1/p' plugin/lib/nf.h)

# Evaluated when a recipe runs, after `deps` may have installed the packages.
pc = $(shell $(PKG_CONFIG) --$(1) $(2))
NF_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP -pthread \
	    $(call pc,cflags,numa json-c libmicrohttpd libcurl libcgroup)
NF_LIBS   = $(call pc,libs,numa json-c libcurl libcgroup) -pthread
ASAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Three programs over one library (libnf.a): cgroup/ and plugin/lib/ (the
# engine, journal, HTTP client, JSON helpers, log) and the hook's parsers.
LIB_SRC  := cgroup/util.c cgroup/nodeset.c cgroup/cgroup.c cgroup/libcg.c cgroup/residency.c cgroup/identity.c \
	    plugin/lib/engine.c plugin/lib/journal.c plugin/lib/http.c plugin/lib/log.c \
	    plugin/lib/record.c plugin/lib/settle.c plugin/lib/mover.c plugin/lib/explain.c \
	    plugin/lib/staged.c plugin/lib/jsonw.c \
	    oci-hook/oci.c
CLI_SRC  := $(wildcard plugin/cli/*.c)
HOOK_SRC := oci-hook/hook.c
AGENT_SRC := $(wildcard plugin/agent/*.c)
# The agent's parts that unit tests link (all but main).
AGENT_LIB := $(filter-out plugin/agent/numafollowd.c,$(AGENT_SRC))
UNIT_SRC := $(wildcard tests/unit/test-*.c)
HELPERS  := $(B)/memhog $(B)/memhog-static $(B)/movetool $(B)/probe $(B)/cgroup-scan
FUZZERS  := $(B)/fuzz-parsers $(B)/fuzz-api
UNITS    := $(UNIT_SRC:tests/unit/test-%.c=$(B)/tests/unit-%) \
	    $(UNIT_SRC:tests/unit/test-%.c=$(B)/asan/unit-%)
SOURCES  := $(LIB_SRC) $(CLI_SRC) $(HOOK_SRC) $(AGENT_SRC) $(UNIT_SRC) tests/helpers/memhog.c $(wildcard tests/fuzz/*.c) \
	    tests/helpers/probe.c tests/bench/movetool.c tests/bench/cgroup-scan.c \
	    $(wildcard */*.h */*/*.h)

# Only the goals that promise a fresh machine may install packages.
ifneq ($(filter check demo bench fuzz soak,$(MAKECMDGOALS)),)
DEPS := deps
endif

.PHONY: all check demo bench soak image fmt install clean deps man deb
.SECONDARY: # keep the unit tests' objects: no rebuild on the next make check
all: $(B)/numafollow $(B)/numafollowd $(B)/numafollow-hook man

# Man pages from scdoc sources (docs/man/NAME.SECTION.scd -> build/man/NAME.SECTION);
# tests/host/t-man.sh lints them and holds them to each program's --help.
MAN_SRC := $(wildcard docs/man/*.scd)
MAN     := $(MAN_SRC:docs/man/%.scd=$(B)/man/%)
man: $(MAN)
$(B)/man/%: docs/man/%.scd | $(DEPS)
	@mkdir -p $(@D)
	scdoc <$< >$@.tmp && mv $@.tmp $@

deps:
	@deploy/install-deps.sh $(if $(filter check,$(MAKECMDGOALS)),--tests)

$(B)/%.o: %.c | $(DEPS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(NF_CFLAGS) -c -o $@ $<

$(B)/asan/%.o: %.c | $(DEPS)
	@mkdir -p $(@D)
	$(CC) -O1 -g $(ASAN) $(NF_CFLAGS) $(call pc,cflags,cmocka) -c -o $@ $<

$(B)/libnf.a: $(LIB_SRC:%.c=$(B)/%.o)
	$(AR) rcs $@ $^

$(B)/asan/libnf.a: $(LIB_SRC:%.c=$(B)/asan/%.o)
	$(AR) rcs $@ $^

$(B)/libagent.a: $(AGENT_LIB:%.c=$(B)/%.o)
	$(AR) rcs $@ $^

$(B)/asan/libagent.a: $(AGENT_LIB:%.c=$(B)/asan/%.o)
	$(AR) rcs $@ $^

$(B)/numafollow: $(CLI_SRC:%.c=$(B)/%.o) $(B)/libnf.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(NF_LIBS)

$(B)/numafollow-hook: $(HOOK_SRC:%.c=$(B)/%.o) $(B)/libnf.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(NF_LIBS)

$(B)/numafollowd: $(AGENT_SRC:%.c=$(B)/%.o) $(B)/libnf.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(NF_LIBS) $(call pc,libs,libmicrohttpd)

$(B)/memhog: tests/helpers/memhog.c | $(DEPS)
	$(CC) $(CFLAGS) $(NF_CFLAGS) -pthread -o $@ $<

# The mover's driver and the workload with its mmap probe (tests/vm/t-mover.sh,
# make bench); the probe static, for containers.
$(B)/movetool: $(B)/tests/bench/movetool.o $(B)/libnf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NF_LIBS)

# The cgroup layer against libcgroup, case by case (tests/bench/cgroup-scan.sh).
$(B)/cgroup-scan: $(B)/tests/bench/cgroup-scan.o $(B)/libnf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NF_LIBS)

$(B)/tests/bench/%.o: tests/bench/%.c | $(DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(NF_CFLAGS) -c -o $@ $<

$(B)/probe: tests/helpers/probe.c | $(DEPS)
	$(CC) $(CFLAGS) -static -pthread -o $@ $<

# For containers whose rootfs is busybox and nothing else.
$(B)/memhog-static: tests/helpers/memhog.c | $(DEPS)
	$(CC) $(CFLAGS) -static -pthread -o $@ $<

$(B)/tests/unit-%: $(B)/tests/unit/test-%.o $(B)/libagent.a $(B)/libnf.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(NF_LIBS) $(call pc,libs,cmocka)

$(B)/tests/unit/%.o: tests/unit/%.c | $(DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(NF_CFLAGS) $(call pc,cflags,cmocka) -c -o $@ $<

$(B)/asan/unit-%: $(B)/asan/tests/unit/test-%.o $(B)/asan/libagent.a $(B)/asan/libnf.a
	$(CC) $(ASAN) -o $@ $^ $(NF_LIBS) $(call pc,libs,cmocka)

# The agent under sanitizers for the soak (tests/vm/t-soak.sh): ASan+UBSan
# (LSan at exit), and ThreadSanitizer for the threads that share its state.
TSAN := -fsanitize=thread -fno-omit-frame-pointer
$(B)/asan/numafollowd: $(AGENT_SRC:%.c=$(B)/asan/%.o) $(B)/asan/libnf.a
	$(CC) $(ASAN) -o $@ $^ $(NF_LIBS) $(call pc,libs,libmicrohttpd)

$(B)/tsan/%.o: %.c | $(DEPS)
	@mkdir -p $(@D)
	$(CC) -O1 -g $(TSAN) $(NF_CFLAGS) -c -o $@ $<

$(B)/tsan/libnf.a: $(LIB_SRC:%.c=$(B)/tsan/%.o)
	$(AR) rcs $@ $^

$(B)/tsan/numafollowd: $(AGENT_SRC:%.c=$(B)/tsan/%.o) $(B)/tsan/libnf.a
	$(CC) $(TSAN) -o $@ $^ $(NF_LIBS) $(call pc,libs,libmicrohttpd)

# The agent's OCI image (deploy/Containerfile, FROM scratch), built with podman
# into its own storage and saved as an OCI archive; tests/vm/t-image.sh runs it.
IMAGE ?= ghcr.io/numafollow/numafollowd:0.2.0
image: $(B)/numafollowd-image.tar
$(B)/numafollowd-image.tar: $(B)/numafollowd $(B)/numafollow $(B)/numafollow-nri deploy/Containerfile deploy/image.sh | $(DEPS)
	@deploy/image.sh $(B) $(IMAGE)

# make check runs a 60 s soak and 20 crashes; this one runs 10 minutes under
# ASan, then 5 under TSan, then 200 crashes.
soak: $(DEPS) all $(HELPERS) $(B)/asan/numafollowd $(B)/tsan/numafollowd
	NF_SOAK_SECONDS=600 tests/vm/vm.sh --cgroup v2 --node-mem 768 --timeout 1500 -- tests/vm/t-soak.sh
	NF_SOAK_SECONDS=300 NF_SOAK_SAN=tsan tests/vm/vm.sh --cgroup v2 --node-mem 768 --timeout 1200 -- tests/vm/t-soak.sh
	NF_CRASH_ROUNDS=200 tests/vm/vm.sh --cgroup v2 --timeout 3600 -- tests/vm/t-agent-crash.sh

# TESTS: what to run (default: everything); e.g. make check TESTS=tests/vm/t-v1-migrate.sh
TESTS ?= $(UNITS) $(FUZZERS) $(wildcard tests/host/t-*.sh) $(sort $(wildcard tests/vm/t-*.sh))
check: $(DEPS) all $(UNITS) $(FUZZERS) $(HELPERS) $(B)/asan/numafollowd $(B)/shapes-test.dat \
	$(if $(filter tests/vm/t-image.sh,$(TESTS)),$(B)/numafollowd-image.tar)
	@tests/run.sh $(TESTS)

# A file of the host's for tests/vm/t-shapes.sh: mapped in the VM, its pages
# are page cache (the VM's own files are tmpfs).
$(B)/shapes-test.dat:
	@mkdir -p $(@D)
	head -c 32M /dev/urandom >$@

demo: $(DEPS) all $(HELPERS)
	@tests/vm/vm.sh --cgroup v2 -- tests/demo.sh
	@tests/vm/vm.sh --cgroup v1 -- tests/demo.sh

bench: $(DEPS) all $(HELPERS)
	@tests/bench/run.sh

fmt:
	clang-format -i $(SOURCES)

# What README.md lists ("make install"; tests/host/t-install.sh holds the two
# to each other). The unit and the hooks.d file name the programs under PREFIX;
# the settings in /etc are installed only where there are none.
HOOKS_DIR ?= /usr/share/containers/oci/hooks.d
install: $(B)/numafollow $(B)/numafollowd $(B)/numafollow-hook $(B)/numafollow-nri $(MAN)
	install -D -m 0755 $(B)/numafollow $(DESTDIR)$(PREFIX)/bin/numafollow
	install -D -m 0755 $(B)/numafollowd $(DESTDIR)$(PREFIX)/sbin/numafollowd
	install -D -m 0755 $(B)/numafollow-hook $(DESTDIR)$(PREFIX)/libexec/numafollow/numafollow-hook
	install -D -m 0755 $(B)/numafollow-nri $(DESTDIR)$(PREFIX)/sbin/numafollow-nri
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(HOOKS_DIR) $(DESTDIR)/etc/numafollow
	sed 's|/usr/local/sbin/numafollowd|$(PREFIX)/sbin/numafollowd|' \
		deploy/systemd/numafollowd.service >$(DESTDIR)$(PREFIX)/lib/systemd/system/numafollowd.service
	sed 's|/usr/local/sbin/numafollow-nri|$(PREFIX)/sbin/numafollow-nri|' \
		deploy/systemd/numafollow-nri.service >$(DESTDIR)$(PREFIX)/lib/systemd/system/numafollow-nri.service
	sed 's|/usr/local/libexec/numafollow/|$(PREFIX)/libexec/numafollow/|' \
		deploy/oci/50-numafollow.json >$(DESTDIR)$(HOOKS_DIR)/50-numafollow.json
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/numafollowd.service \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/numafollow-nri.service $(DESTDIR)$(HOOKS_DIR)/50-numafollow.json
	test -e $(DESTDIR)/etc/numafollow/numafollowd.conf || \
		install -m 0644 deploy/numafollowd.conf $(DESTDIR)/etc/numafollow/numafollowd.conf
	test -e $(DESTDIR)/etc/numafollow/hook.conf || \
		install -m 0644 deploy/hook.conf $(DESTDIR)/etc/numafollow/hook.conf
	install -d $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 $(filter %.5,$(MAN)) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 $(filter %.8,$(MAN)) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -D -m 0644 deploy/bash-completion/numafollow \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/numafollow

# The Debian package, with Debian's tools: deploy/debian/ is copied beside the
# sources into $(B)/deb/src (the layout keeps debian/ off the top level) and
# dpkg-buildpackage builds there; the changelog's one entry is written from
# VERSION, so the package's version is the programs'.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB     := $(B)/numafollow_$(VERSION)_$(DEB_ARCH).deb
DEB_SRC := Makefile README.md cgroup plugin oci-hook deploy docs
# the commit's date, so that the same commit builds the same package
DEB_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
DEB_DATE   := $(shell date -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))
deb: $(DEB)
# (here, below DEB: a rule's prerequisites are expanded where it stands)
check: $(if $(filter %/t-deb.sh,$(TESTS)),$(DEB))
$(DEB): $(shell find $(DEB_SRC) -type f) | $(DEPS)
	rm -rf $(B)/deb && mkdir -p $(B)/deb/src
	cp -a $(DEB_SRC) $(B)/deb/src/
	cp -a deploy/debian $(B)/deb/src/debian
	printf '%s\n\n  * %s\n\n -- %s  %s\n' 'numafollow ($(VERSION)) unstable; urgency=medium' \
		'numafollow $(VERSION), built by make deb$(if $(DEB_COMMIT), from commit $(DEB_COMMIT)).' \
		'$(shell sed -n 's/^Maintainer: //p' deploy/debian/control)' '$(DEB_DATE)' \
		>$(B)/deb/src/debian/changelog
	cd $(B)/deb/src && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	cp $(B)/deb/numafollow_$(VERSION)_$(DEB_ARCH).deb $@

clean:
	rm -rf $(B)

# (not the package's build tree in $(B)/deb, whose hooks.d is a directory)
-include $(shell find $(B) -path $(B)/deb -prune -o -name '*.d' -type f -print 2>/dev/null)

# libFuzzer (clang): fuzz-parsers over every parser, fuzz-api over the API's
# request path (route.c) with an agent held in memory (tests/fuzz/fake-agent.c).
# FUZZ_SECONDS each; `make check` runs a short pass of both.
FUZZ_SECONDS ?= 60
FUZZ_CC   = clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
	    $(call pc,cflags,json-c libcgroup) -Wall -Wextra -Werror
API_FUZZ := tests/fuzz/fuzz-api.c tests/fuzz/fake-agent.c plugin/agent/route.c \
	    plugin/agent/metrics.c plugin/agent/decide.c plugin/agent/history.c \
	    plugin/agent/kevents.c plugin/agent/registration.c plugin/agent/stream.c

$(B)/fuzz-parsers: tests/fuzz/fuzz-parsers.c $(LIB_SRC) | $(DEPS)
	$(FUZZ_CC) -o $@ $^ $(NF_LIBS)

$(B)/fuzz-api: $(API_FUZZ) $(LIB_SRC) $(wildcard tests/fuzz/*.h plugin/agent/*.h) | $(DEPS)
	$(FUZZ_CC) -o $@ $(filter %.c,$^) $(NF_LIBS)

.PHONY: fuzz
fuzz: $(FUZZERS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh $(FUZZERS)

# ---- numafollow-nri: the NRI plugin (plugin/nri/, docs/nri.md) ----
# protoc-c builds the wire's C from the committed .proto files (NRI 0.6.1's
# api.proto, ttRPC's request.proto, google.rpc.Status) into $(B)/nri/gen.
# GNU C predefines `linux`, a member name in api.proto: -Ulinux.
NRI_PROTO := plugin/nri/proto/api.proto plugin/nri/proto/ttrpc/request.proto \
	     plugin/nri/proto/google/rpc/status.proto plugin/nri/proto/google/protobuf/any.proto
NRI_GEN_C := $(NRI_PROTO:plugin/nri/proto/%.proto=$(B)/nri/gen/%.pb-c.c)
NRI_GEN_H := $(NRI_GEN_C:.c=.h)
# the wire and the decisions, which the unit tests and the fuzzer link
NRI_LIB   := plugin/nri/wire.c plugin/nri/ttrpc.c plugin/nri/policy.c
NRI_SRC   := $(NRI_LIB) plugin/nri/session.c plugin/nri/agentc.c plugin/nri/repin.c plugin/nri/plugin.c plugin/nri/numafollow-nri.c
NRI_CFLAGS = -Ulinux -I$(B)/nri/gen $(call pc,cflags,libprotobuf-c)
NRI_LIBS   = $(call pc,libs,libprotobuf-c)
SOURCES   += $(wildcard plugin/nri/*.c plugin/nri/*.h)
all: $(B)/numafollow-nri

$(NRI_GEN_C) $(NRI_GEN_H) &: $(NRI_PROTO) | $(DEPS)
	@mkdir -p $(B)/nri/gen
	protoc-c --c_out=$(B)/nri/gen -Iplugin/nri/proto $(NRI_PROTO)

$(B)/nri/gen/%.o: $(B)/nri/gen/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -std=gnu11 -Ulinux -I$(B)/nri/gen $(call pc,cflags,libprotobuf-c) -c -o $@ $<

$(B)/asan/nri/gen/%.o: $(B)/nri/gen/%.c
	@mkdir -p $(@D)
	$(CC) -O1 -g $(ASAN) -std=gnu11 -Ulinux -I$(B)/nri/gen $(call pc,cflags,libprotobuf-c) -c -o $@ $<

$(B)/plugin/nri/%.o $(B)/asan/plugin/nri/%.o $(B)/tests/unit/test-nri.o $(B)/asan/tests/unit/test-nri.o: \
	NF_CFLAGS += $(NRI_CFLAGS)
$(NRI_SRC:%.c=$(B)/%.o) $(NRI_SRC:%.c=$(B)/asan/%.o) $(B)/tests/unit/test-nri.o \
	$(B)/asan/tests/unit/test-nri.o: $(NRI_GEN_H)

$(B)/libnri.a: $(NRI_LIB:%.c=$(B)/%.o) $(NRI_GEN_C:%.c=%.o)
	$(AR) rcs $@ $^

$(B)/asan/libnri.a: $(NRI_LIB:%.c=$(B)/asan/%.o) $(NRI_GEN_C:$(B)/%.c=$(B)/asan/%.o)
	$(AR) rcs $@ $^

$(B)/numafollow-nri: $(filter-out $(NRI_LIB:%.c=$(B)/%.o),$(NRI_SRC:%.c=$(B)/%.o)) \
	$(B)/libnri.a $(B)/libnf.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(NF_LIBS) $(NRI_LIBS)

# the CLI's pure parts (names, the event stream's parser)
CLI_PURE := plugin/cli/names.c plugin/cli/sse.c plugin/cli/cli.c
$(B)/tests/unit-cli: $(B)/tests/unit/test-cli.o $(CLI_PURE:%.c=$(B)/%.o) $(B)/libnf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NF_LIBS) $(call pc,libs,cmocka)
$(B)/asan/unit-cli: $(B)/asan/tests/unit/test-cli.o $(CLI_PURE:%.c=$(B)/asan/%.o) $(B)/asan/libnf.a
	$(CC) $(ASAN) -o $@ $^ $(NF_LIBS) $(call pc,libs,cmocka)

# the unit tests of the wire and the decisions link libnri too
$(B)/tests/unit-nri: $(B)/tests/unit/test-nri.o $(B)/libnri.a $(B)/libnf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NF_LIBS) $(NRI_LIBS) $(call pc,libs,cmocka)
$(B)/asan/unit-nri: $(B)/asan/tests/unit/test-nri.o $(B)/asan/libnri.a $(B)/asan/libnf.a
	$(CC) $(ASAN) -o $@ $^ $(NF_LIBS) $(NRI_LIBS) $(call pc,libs,cmocka)

# libFuzzer over the multiplexer's and ttRPC's framing and the messages
FUZZERS += $(B)/fuzz-nri
$(B)/fuzz-nri: tests/fuzz/fuzz-nri.c $(NRI_LIB) $(NRI_GEN_C) $(LIB_SRC) | $(DEPS)
	$(FUZZ_CC) -Ulinux -I$(B)/nri/gen $(call pc,cflags,libprotobuf-c) -o $@ $(filter %.c,$^) \
		$(NF_LIBS) $(NRI_LIBS)
check: $(B)/numafollow-nri $(B)/fuzz-nri
fuzz: $(B)/fuzz-nri
# tests/vm/t-nri.sh runs Debian 13's containerd, fetched once into ~/.cache
.PHONY: nri-fetch
nri-fetch: | $(DEPS)
	@tests/nri/fetch.sh
check: $(if $(filter tests/vm/t-nri.sh,$(TESTS)),nri-fetch)
