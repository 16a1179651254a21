"""What the running kernel's BTF says, for tests that depend on the kernel.

The tests decide from BTF, as rstwatch does (user/loader.c), never from the
release string: distribution kernels backport.  Reads /sys/kernel/btf/vmlinux
(the format: Documentation/bpf/btf.rst) with the standard library only.
"""
import struct

VMLINUX = "/sys/kernel/btf/vmlinux"

# kind -> bytes of data after the 12-byte struct btf_type (vlen = count)
KIND_INT, KIND_PTR, KIND_STRUCT, KIND_ENUM, KIND_TYPEDEF, KIND_FUNC_PROTO = 1, 2, 4, 6, 8, 13
_EXTRA = {1: lambda v: 4, 3: lambda v: 12, 4: lambda v: 12 * v, 5: lambda v: 12 * v,
          6: lambda v: 8 * v, 13: lambda v: 8 * v, 14: lambda v: 4, 15: lambda v: 12 * v,
          17: lambda v: 4, 19: lambda v: 12 * v}


class Btf:
    def __init__(self, path=VMLINUX):
        with open(path, "rb") as f:
            data = f.read()
        magic, _, _, hdr_len, type_off, type_len, str_off, str_len = \
            struct.unpack_from("<HBBIIIII", data)
        if magic != 0xEB9F:
            raise ValueError(f"{path}: not BTF (magic {magic:#x})")
        types = data[hdr_len + type_off:hdr_len + type_off + type_len]
        self.strs = data[hdr_len + str_off:hdr_len + str_off + str_len]
        self.types = [None]            # type id 0 is void
        self.by_name = {}
        off = 0
        while off < len(types):
            name_off, info, size_type = struct.unpack_from("<III", types, off)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            extra = _EXTRA.get(kind, lambda v: 0)(vlen)
            t = (kind, vlen, size_type, types[off + 12:off + 12 + extra], self.name(name_off))
            self.by_name.setdefault((t[4], kind), len(self.types))
            self.types.append(t)
            off += 12 + extra

    def name(self, off):
        return self.strs[off:self.strs.index(b"\0", off)].decode()

    def tp_nargs(self, tp):
        """Arguments of a raw tracepoint (btf_trace_<tp>, minus the void
        *__data first parameter), or -1 if this kernel has no such tracepoint."""
        tid = self.by_name.get((f"btf_trace_{tp}", KIND_TYPEDEF))
        if tid is None:
            return -1
        ptr = self.types[self.types[tid][2]]
        proto = self.types[ptr[2]] if ptr and ptr[0] == KIND_PTR else None
        return proto[1] - 1 if proto and proto[0] == KIND_FUNC_PROTO else -1

    def enum_names(self, enum):
        tid = self.by_name.get((enum, KIND_ENUM))
        if tid is None:
            return set()
        _, vlen, _, body, _ = self.types[tid]
        return {self.name(struct.unpack_from("<I", body, 8 * i)[0]) for i in range(vlen)}


_btf = None


def kernel():
    global _btf
    if _btf is None:
        _btf = Btf()
    return _btf


def has_member(struct_name, member):
    """struct `struct_name` of this kernel has a member `member`."""
    k = kernel()
    tid = k.by_name.get((struct_name, KIND_STRUCT))
    if tid is None:
        return False
    _, vlen, _, body, _ = k.types[tid]
    return any(k.name(struct.unpack_from("<I", body, 12 * i)[0]) == member for i in range(vlen))


def tw_counted_at_expiry():
    """TcpExt TW (and TWKilled) count a time-wait socket when its timer runs
    out, not when it is made: 5.10's tw_timer_handler() counts it, as
    TWKilled if the tw_kill bit is set (a timeout of 4 s or less), so a tw
    killed early (RST, reuse, ss -K) is never counted; 6.1 counts it in
    __inet_twsk_schedule() and has no tw_kill."""
    return has_member("inet_timewait_sock", "tw_kill")


def has_rst_reasons():
    """tcp:tcp_send_reset carries enum sk_rst_reason (6.10+: three arguments)."""
    return kernel().tp_nargs("tcp_send_reset") >= 3


def has_rst_reason(name):
    """This kernel's tcp_send_reset reports reason `name` (the names grew
    after 6.10: TCP_STATE and the other active-reset reasons came in 6.12)."""
    return has_rst_reasons() and f"SK_RST_REASON_{name}" in kernel().enum_names("sk_rst_reason")


def has_refused_rst():
    """rstwatch reports challenged_rst: skb:kfree_skb names the receiving
    socket (four arguments, 6.11+) and enum skb_drop_reason has TCP_RESET."""
    return (kernel().tp_nargs("kfree_skb") >= 4 and
            "SKB_DROP_REASON_TCP_RESET" in kernel().enum_names("skb_drop_reason"))


def has_peer_probe():
    """rstwatch's peer probe can run: bpf_for_each_map_elem() (5.13+)."""
    return "BPF_FUNC_for_each_map_elem" in kernel().enum_names("bpf_func_id")
