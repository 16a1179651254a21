# rstwatch — build: clang -> bpftool gen object -> bpftool gen skeleton -> cc
# `make` builds ./rstwatch; `make test` runs unit tests, fuzz targets (`make
# fuzz`) and e2e tests (e2e needs root); `make V=1` shows the commands.
# CFLAGS, CPPFLAGS, LDFLAGS and EXTRA_CFLAGS are honoured (as distributions
# pass them); WERROR=0 turns warnings back into warnings.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/rstwatch
SYSCONFDIR ?= /etc

CLANG   ?= clang
BPFTOOL ?= bpftool
CC      ?= cc
HOST_ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
ARCH    ?= $(HOST_ARCH)

OUT     := .output
BIN     := rstwatch
VMLINUX := vmlinux/$(ARCH)/vmlinux.h

# Cross build (`make ARCH=arm64` on x86): Debian's cross compiler, and
# libbpf, libelf and zlib for the target taken from Debian's arm64 packages
# (downloaded and unpacked into $(OUT)/sysroot by scripts/apt-local, the
# machine's dpkg architectures untouched) and linked statically; glibc stays
# dynamic.  Everything goes to .output/cross-ARCH/, the binary too, so the
# native ./rstwatch stays.
ifneq ($(ARCH),$(HOST_ARCH))
CROSS_TRIPLE_arm64 := aarch64-linux-gnu
CROSS_TRIPLE_x86   := x86_64-linux-gnu
CROSS_DEB_arm64    := arm64
CROSS_DEB_x86      := amd64
CROSS_TRIPLE := $(CROSS_TRIPLE_$(ARCH))
ifeq ($(CROSS_TRIPLE),)
$(error ARCH=$(ARCH): cross builds know arm64 and x86)
endif
OUT     := .output/cross-$(ARCH)
BIN     := $(OUT)/rstwatch
ifeq ($(origin CC),default)
CC      := $(CROSS_TRIPLE)-gcc
endif
SYSROOT := $(OUT)/sysroot
SYSROOT_LIBS := $(addprefix $(SYSROOT)/usr/lib/$(CROSS_TRIPLE)/,libbpf.a libelf.a libz.a)
CROSS_SUITE ?= bookworm
CROSS_LDLIBS := $(SYSROOT_LIBS)
USER_SYSROOT := -isystem $(SYSROOT)/usr/include
endif

CFLAGS  ?= -O2 -g
WERROR  ?= 1
WARN    := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
USER_CFLAGS := $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE \
	       -I$(OUT) -Ibpf -Iuser -MMD -MP $(USER_SYSROOT)
# BPF_PROG() hands every program an unused ctx: silence only that on the BPF side.
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) -Wno-unused-function -Wno-unused-parameter \
	       -I$(OUT) -Ibpf -Ivmlinux/$(ARCH) -MMD -MP
LDLIBS  := $(if $(CROSS_LDLIBS),$(CROSS_LDLIBS),-lbpf -lelf -lz)

# Userspace files shared by the binary and the unit tests (everything but main).
LIB_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
LIB_OBJS := $(patsubst user/%.c,$(OUT)/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/unit/%,$(UNIT_SRCS))

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
# Debian packages: build (clang, bpftool, libbpf...), tests (netns, nftables,
# jq for the hostile-strings test, valgrind, nsenter/setpriv from util-linux,
# and the real servers and clients of tests/e2e/scen_servers.py, which it
# starts itself in its namespaces: it never uses their system services),
# the VM test (qemu, busybox-static, cpio and xz-utils for its initramfs),
# the arm64 cross build and its VM test (Debian's cross compiler and arm64
# C library, qemu-system-arm for qemu-system-aarch64); the service tests:
# prometheus (the server and promtool, run by the tests, never as a
# service), Debian's python3 modules for the OpenMetrics parser and the JSON
# Schema and the Kubernetes manifest's YAML, systemd (systemd-analyze only),
# logrotate, strace (the system calls the unit must allow); the middlebox
# tests: scapy (a third party's RSTs, tests/e2e/inject.py) and conntrack (a
# NAT's lost flow).
# libclang-rt-14-dev holds clang 14's libFuzzer (libclang_rt.fuzzer), which
# clang only recommends: `make fuzz` needs it.
DEPS := make gcc libc6-dev clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev \
	iproute2 nftables procps python3 libclang-rt-14-dev jq valgrind util-linux \
	nginx-light haproxy redis-server redis-tools curl postgresql postgresql-client \
	qemu-system-x86 busybox-static cpio xz-utils \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm \
	prometheus python3-prometheus-client python3-jsonschema python3-yaml systemd logrotate strace \
	python3-scapy conntrack

.PHONY: all clean install install-service test test-vm test-vm-arm64 unit e2e traces vmlinux deps \
	bench bench-deps bench-bin load-bin

all: $(BIN)

ifneq ($(ARCH),$(HOST_ARCH))
# The target's libbpf-dev, libelf-dev and zlib1g-dev (headers, static libraries).
$(SYSROOT)/.done:
	$(call msg,SYSROOT,$(SYSROOT) (Debian $(CROSS_SUITE) $(CROSS_DEB_$(ARCH))))
	$(Q)rm -rf $(SYSROOT) $(OUT)/debs && mkdir -p $(OUT)/debs
	$(Q)cd $(OUT)/debs && $(CURDIR)/scripts/apt-local $(CURDIR)/.output/vm/apt/$(CROSS_DEB_$(ARCH))-$(CROSS_SUITE) \
		$(CROSS_SUITE) $(CROSS_DEB_$(ARCH)) apt-get -qq download \
		libbpf-dev:$(CROSS_DEB_$(ARCH)) libelf-dev:$(CROSS_DEB_$(ARCH)) zlib1g-dev:$(CROSS_DEB_$(ARCH))
	$(Q)for d in $(OUT)/debs/*.deb; do dpkg-deb -x $$d $(SYSROOT) || exit 1; done
	$(Q)rm -rf $(OUT)/debs
	$(Q)touch $@

$(SYSROOT_LIBS): $(SYSROOT)/.done
	$(Q)test -e $@
endif

$(OUT) $(OUT)/unit:
	$(Q)mkdir -p $@

# A vmlinux.h per architecture is checked in; another one must be generated
# from that architecture's BTF first.
$(VMLINUX):
	$(error $(VMLINUX) is missing: no checked-in types for ARCH=$(ARCH); run `make vmlinux ARCH=$(ARCH) BTF=/path/to/its/vmlinux-or-btf` to generate it)

$(OUT)/rstwatch.tmp.bpf.o: bpf/rstwatch.bpf.c $(VMLINUX) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/rstwatch.bpf.o: $(OUT)/rstwatch.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUT)/rstwatch.skel.h: $(OUT)/rstwatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name rstwatch_bpf > $@

# Only loader.c includes the skeleton; the explicit edge makes it exist before
# the first compile, -MMD keeps every other header edge exact afterwards.
$(OUT)/loader.o: $(OUT)/rstwatch.skel.h

$(OUT)/%.o: user/%.c | $(OUT) $(SYSROOT_LIBS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(BIN): $(OUT)/main.o $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/unit/%: tests/unit/%.c $(LIB_OBJS) | $(OUT)/unit
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) $(LDFLAGS) $< $(LIB_OBJS) $(LDLIBS) -o $@

unit: rstwatch $(UNIT_BINS)
	$(Q)tests/unit/run $(UNIT_BINS) tests/unit/sync

e2e: rstwatch load-bin
	$(Q)python3 tests/e2e/run.py $(E2E_ARGS)

# Re-record tests/traces/ from the e2e scenarios (root): each passing test's
# trace and the verdicts its replay gives.  `make unit` replays and diffs them.
# E2E_ARGS='-k NAME' refreshes only those.
traces: rstwatch load-bin
	$(Q)python3 tests/e2e/run.py --record-fixtures tests/traces $(E2E_ARGS)

# The whole suite: unit tests and fuzz targets (no root) then the real-kernel
# e2e tests (root).
test: rstwatch load-bin $(UNIT_BINS)
	$(Q)tests/run-all $(UNIT_BINS) tests/unit/sync

# The e2e suite again on Debian's packaged kernels under qemu (TCG), one
# after the other, with this very ./rstwatch: 5.10, 6.1 and 6.12 (x86_64,
# the whole suite), then arm64 6.1 (the cross-built binary, a handful of
# scenarios): tests/vm/run.  KERNELS="5.10 6.12" picks some; E2E_ARGS='-k
# NAME' narrows the tests.
KERNELS ?= 5.10 6.1 6.12 arm64:6.1
test-vm: rstwatch load-bin
	$(Q)case "$(KERNELS)" in *arm64:*) $(MAKE) -s ARCH=arm64 ;; esac
	$(Q)KERNELS="$(KERNELS)" tests/vm/run $(E2E_ARGS)

# The arm64 guest alone.
test-vm-arm64:
	$(Q)$(MAKE) -s test-vm KERNELS=arm64:6.1

deps:
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $(DEPS)

vmlinux:
	$(Q)vmlinux/gen.sh $(BTF) $(ARCH)

install: rstwatch
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR)
	install -m 0755 rstwatch $(DESTDIR)$(BINDIR)/rstwatch
	install -m 0644 man/rstwatch.8 $(DESTDIR)$(MANDIR)/man8/rstwatch.8
	install -m 0644 man/rstwatch-trace.5 $(DESTDIR)$(MANDIR)/man5/rstwatch-trace.5
	install -m 0644 deploy/rstwatch.schema.json deploy/prometheus/rstwatch-rules.yml $(DESTDIR)$(DATADIR)/

# The service (deploy/): systemd unit (ExecStart on $(BINDIR)) and logrotate
# snippet under $(SYSCONFDIR); then systemctl daemon-reload and enable --now.
install-service: install
	install -d $(DESTDIR)$(SYSCONFDIR)/systemd/system $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	sed 's|/usr/local/sbin/rstwatch|$(BINDIR)/rstwatch|' deploy/systemd/rstwatch.service \
		> $(DESTDIR)$(SYSCONFDIR)/systemd/system/rstwatch.service
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/systemd/system/rstwatch.service
	install -m 0644 deploy/logrotate/rstwatch $(DESTDIR)$(SYSCONFDIR)/logrotate.d/rstwatch

clean:
	$(Q)rm -rf $(OUT) rstwatch

-include $(wildcard $(OUT)/*.d $(OUT)/unit/*.d)

# ---- load generator ----------------------------------------------------
# tests/load/mixload: many concurrent connections between two namespaces,
# each ending in one of a dozen ways; the e2e test load_mix and `make bench`
# run it (tests/e2e/scen_load.py).
LOAD_BIN := $(OUT)/load/mixload

$(OUT)/load:
	$(Q)mkdir -p $@

$(LOAD_BIN): tests/load/mixload.c | $(OUT)/load
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -pthread $< -pthread -o $@

load-bin: $(LOAD_BIN)

-include $(wildcard $(OUT)/load/*.d)

# ---- benchmark ---------------------------------------------------------
# `make bench` (root): tests/bench/run.py measures rstwatch against no tracer,
# empty programs on the same tracepoints (the floor), bpftrace and
# libbpf-tools' tcpstates, interleaved in one run, then rstwatch's memory over
# ten million connections, a 5-minute soak with 1% aborts counted against the
# generator's own tally, one rstwatch through a million mixload connections,
# and rewrites BENCHMARKS.md (a summary table of the targets first).
# BENCH_ARGS='--load-only' runs only the latter and replaces its section.
# Not part of `make test`: its targets are numbers, not pass/fail.
# BENCH_ARGS='--quick' for a short run while working on it.
BENCH_DEPS := bpftrace libbpf-tools

$(OUT)/bench:
	$(Q)mkdir -p $@

$(OUT)/bench/%.tmp.bpf.o: tests/bench/%.bpf.c $(VMLINUX) | $(OUT)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/bench/%.bpf.o: $(OUT)/bench/%.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUT)/bench/%.skel.h: $(OUT)/bench/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUT)/bench/floor: tests/bench/floor.c $(OUT)/bench/floor.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -I$(OUT)/bench $< $(LDLIBS) -o $@

$(OUT)/bench/churn: tests/bench/churn.c | $(OUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) $< -o $@

.SECONDARY: $(OUT)/bench/floor.tmp.bpf.o $(OUT)/bench/floor.bpf.o

bench-bin: rstwatch $(OUT)/bench/floor $(OUT)/bench/churn $(LOAD_BIN)

bench-deps:
	$(Q)command -v bpftrace >/dev/null && command -v tcpstates >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCH_DEPS); }

bench: bench-deps bench-bin
	$(Q)python3 tests/bench/run.py $(BENCH_ARGS)

-include $(wildcard $(OUT)/bench/*.d)

# ---- fuzzing -----------------------------------------------------------
# `make fuzz`: libFuzzer targets for what reads untrusted bytes (tests/fuzz/).
# Each runs once over its committed corpus, then FUZZ_SECONDS (default 60) on
# new inputs in a scratch copy; a crash fails the run and leaves a reproducer
# in .output/fuzz/NAME/.  The user/ sources are rebuilt instrumented for
# coverage and with ASan and UBSan, apart from the normal objects.
FUZZ_SECONDS ?= 60
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -g -O1 $(WARN) -std=gnu11 -D_GNU_SOURCE -Iuser -MMD -MP
# what the targets reach: the trace reader, every output of an event, the
# metrics endpoint's request parser
FUZZ_LIB_OBJS := $(patsubst %,$(OUT)/fuzz/obj/%.o,trace names escape verdict format flow \
		 output_json output_text httpd)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-corpus
# only pattern rules name the objects: keep make from deleting them as intermediates
.SECONDARY: $(FUZZ_LIB_OBJS) $(patsubst $(OUT)/fuzz/%,$(OUT)/fuzz/obj/%.o,$(FUZZ_BINS))

$(OUT)/fuzz/obj:
	$(Q)mkdir -p $@

$(OUT)/fuzz/obj/%.o: user/%.c | $(OUT)/fuzz/obj
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUT)/fuzz/obj/%.o: tests/fuzz/%.c | $(OUT)/fuzz/obj
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUT)/fuzz/fuzz_%: $(OUT)/fuzz/obj/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@

fuzz: $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(FUZZ_BINS)

# Regenerate the generated seeds in tests/fuzz/corpus/ (after a format change).
$(OUT)/fuzz/mkcorpus: tests/fuzz/mkcorpus.c $(OUT)/trace.o $(OUT)/names.o | $(OUT)/fuzz/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ -o $@

fuzz-corpus: $(OUT)/fuzz/mkcorpus
	$(Q)$< tests/fuzz/corpus

-include $(wildcard $(OUT)/fuzz/obj/*.d)

# ---- sanitizers --------------------------------------------------------
# `make sanitize`: rstwatch and the unit tests rebuilt with ASan+UBSan
# (.output/asan/), the unit tests and one live e2e scenario run with them,
# then a replay of every recorded trace under valgrind (memcheck, leaks
# included) with the normal build.  Part of make test (tests/sanitize).
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_CFLAGS := -g -O1 $(WARN) -std=gnu11 -D_GNU_SOURCE -I$(OUT) -Ibpf -Iuser -MMD -MP $(SAN_FLAGS)
SAN_LIB_OBJS := $(patsubst user/%.c,$(OUT)/asan/%.o,$(LIB_SRCS))
SAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/asan/unit/%,$(UNIT_SRCS))

.PHONY: sanitize
.SECONDARY: $(SAN_LIB_OBJS) $(OUT)/asan/main.o

$(OUT)/asan $(OUT)/asan/unit:
	$(Q)mkdir -p $@

$(OUT)/asan/loader.o: $(OUT)/rstwatch.skel.h

$(OUT)/asan/%.o: user/%.c | $(OUT)/asan
	$(call msg,CC-ASAN,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) -c $< -o $@

$(OUT)/asan/rstwatch: $(OUT)/asan/main.o $(SAN_LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CLANG) $(SAN_FLAGS) $^ $(LDLIBS) -o $@

$(OUT)/asan/unit/%: tests/unit/%.c $(SAN_LIB_OBJS) | $(OUT)/asan/unit
	$(call msg,CC-ASAN,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) $< $(SAN_LIB_OBJS) $(LDLIBS) -o $@

sanitize: rstwatch $(OUT)/asan/rstwatch $(SAN_UNIT_BINS)
	$(Q)tests/sanitize $(OUT)/asan/rstwatch $(SAN_UNIT_BINS)

-include $(wildcard $(OUT)/asan/*.d $(OUT)/asan/unit/*.d)
