// x86 vCPU state: declarative field tables map kvm structs to plain JS objects (64-bit registers as bigints),
// the state a snapshot saves (XSAVE, XCRs, TSC frequency; vCPU events and debug registers as opaque bytes),
// and the in-run-loop ACPI PM timer.
#include "vcpu.h"
#include "x86-abi.h"
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>
#include <sys/ioctl.h>

namespace kvmn {

namespace {

struct U64Field { const char* name; size_t offset; };

#define REG(n) {#n, offsetof(kvm_regs, n)}
const U64Field kRegs[] = {REG(rax), REG(rbx), REG(rcx), REG(rdx), REG(rsi), REG(rdi), REG(rsp), REG(rbp),
                          REG(r8),  REG(r9),  REG(r10), REG(r11), REG(r12), REG(r13), REG(r14), REG(r15),
                          REG(rip), REG(rflags)};
#undef REG

const U64Field kControl[] = {{"cr0", offsetof(kvm_sregs, cr0)}, {"cr2", offsetof(kvm_sregs, cr2)},
                             {"cr3", offsetof(kvm_sregs, cr3)}, {"cr4", offsetof(kvm_sregs, cr4)},
                             {"cr8", offsetof(kvm_sregs, cr8)}, {"efer", offsetof(kvm_sregs, efer)},
                             {"apicBase", offsetof(kvm_sregs, apic_base)}};

struct SegField { const char* name; size_t offset; };
const SegField kSegments[] = {{"cs", offsetof(kvm_sregs, cs)}, {"ds", offsetof(kvm_sregs, ds)},
                              {"es", offsetof(kvm_sregs, es)}, {"fs", offsetof(kvm_sregs, fs)},
                              {"gs", offsetof(kvm_sregs, gs)}, {"ss", offsetof(kvm_sregs, ss)},
                              {"tr", offsetof(kvm_sregs, tr)}, {"ldt", offsetof(kvm_sregs, ldt)}};
const SegField kTables[] = {{"gdt", offsetof(kvm_sregs, gdt)}, {"idt", offsetof(kvm_sregs, idt)}};

// Byte-wide attributes of kvm_segment.
#define SEGB(n) {#n, offsetof(kvm_segment, n)}
const U64Field kSegBytes[] = {SEGB(type), SEGB(present), SEGB(dpl), SEGB(db), SEGB(s), SEGB(l), SEGB(g), SEGB(avl), SEGB(unusable)};
#undef SEGB

uint64_t& At64(void* base, size_t off) { return *reinterpret_cast<uint64_t*>(static_cast<uint8_t*>(base) + off); }

Napi::Object SegmentToJs(Napi::Env env, const kvm_segment& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(s.base)));  // fs/gs bases are often kernel addresses
  o.Set("limit", Napi::Number::New(env, s.limit));
  o.Set("selector", Napi::Number::New(env, s.selector));
  for (const auto& f : kSegBytes) o.Set(f.name, Napi::Number::New(env, reinterpret_cast<const uint8_t*>(&s)[f.offset]));
  return o;
}

bool SegmentFromJs(Napi::Object o, kvm_segment* s) {
  uint64_t v;
  if (!FieldU64(o, "base", &v, 0, true)) return false;
  s->base = v;
  if (!FieldU64(o, "limit", &v, 0, true)) return false;
  s->limit = static_cast<uint32_t>(v);
  if (!FieldU64(o, "selector", &v, 0, true)) return false;
  s->selector = static_cast<uint16_t>(v);
  for (const auto& f : kSegBytes) {
    if (!FieldU64(o, f.name, &v, 0, false)) return false;
    reinterpret_cast<uint8_t*>(s)[f.offset] = static_cast<uint8_t>(v);
  }
  return true;
}

Napi::Object RequireObject(const Napi::CallbackInfo& info, size_t i, bool* ok) {
  *ok = info[i].IsObject();
  if (!*ok) {
    ThrowType(info.Env(), "expected an object argument");
    return Napi::Object();
  }
  return info[i].As<Napi::Object>();
}

// A typed array's bytes, or nullptr (and a RangeError) when it is not one of `want` bytes (0: any length).
const uint8_t* BytesArg(const Napi::CallbackInfo& info, size_t i, size_t want, const char* what, size_t* len) {
  if (!info[i].IsTypedArray() || (want != 0 && info[i].As<Napi::TypedArray>().ByteLength() != want)) {
    std::string msg = std::string(what) + " must be a Uint8Array" + (want ? " of " + std::to_string(want) + " bytes" : "");
    ThrowRange(info.Env(), msg.c_str());
    return nullptr;
  }
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  *len = t.ByteLength();
  return static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
}

// Fixed-size vCPU state passed to JS as opaque bytes: one get/set ioctl pair each (VcpuHandle::GetBytes<K>).
struct ByteState {
  const char* getName;
  const char* setName;
  unsigned long get;
  unsigned long set;
  size_t size;
};
constexpr size_t kVcpuEvents = 0, kDebugRegs = 1;
const ByteState kByteStates[] = {
    {"KVM_GET_VCPU_EVENTS", "KVM_SET_VCPU_EVENTS", KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(kvm_vcpu_events)},
    {"KVM_GET_DEBUGREGS", "KVM_SET_DEBUGREGS", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(kvm_debugregs)},
};
// The sizes src/constants.ts's X86StateSize gives JS.
static_assert(sizeof(kvm_vcpu_events) == 64 && sizeof(kvm_debugregs) == 128, "X86StateSize");
static_assert(offsetof(kvm_vcpu_events, flags) == 20, "Vcpu.setVcpuEvents writes the flags at byte 20");

}  // namespace

template <size_t K>
Napi::Value VcpuHandle::GetBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ByteState& b = kByteStates[K];
  if (!CheckOpen(env)) return env.Undefined();
  std::vector<uint64_t> buf((b.size + 7) / 8);  // 8-byte aligned, zeroed
  if (!IoctlOrThrow(env, fd_, b.get, buf.data(), b.getName)) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, b.size);
  memcpy(out.Data(), buf.data(), b.size);
  return out;
}

template <size_t K>
Napi::Value VcpuHandle::SetBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ByteState& b = kByteStates[K];
  size_t len;
  const uint8_t* p = BytesArg(info, 0, b.size, b.setName, &len);
  if (!p || !CheckOpen(env)) return env.Undefined();
  std::vector<uint64_t> buf((b.size + 7) / 8);
  memcpy(buf.data(), p, b.size);
  IoctlOrThrow(env, fd_, b.set, buf.data(), b.setName);
  return env.Undefined();
}

void VcpuHandle::AddArchMethods(std::vector<Method>* methods) {
  methods->insert(methods->end(),
                  {InstanceMethod("getRegs", &VcpuHandle::GetRegs), InstanceMethod("setRegs", &VcpuHandle::SetRegs),
                   InstanceMethod("getSregs", &VcpuHandle::GetSregs), InstanceMethod("setSregs", &VcpuHandle::SetSregs),
                   InstanceMethod("getFpu", &VcpuHandle::GetFpu), InstanceMethod("setFpu", &VcpuHandle::SetFpu),
                   InstanceMethod("getMsrs", &VcpuHandle::GetMsrs), InstanceMethod("setMsrs", &VcpuHandle::SetMsrs),
                   InstanceMethod("setCpuid", &VcpuHandle::SetCpuid),
                   InstanceMethod("getLapic", &VcpuHandle::GetLapic), InstanceMethod("setLapic", &VcpuHandle::SetLapic),
                   InstanceMethod("setPmTimer", &VcpuHandle::SetPmTimer),
                   InstanceMethod("getXsave", &VcpuHandle::GetXsave), InstanceMethod("setXsave", &VcpuHandle::SetXsave),
                   InstanceMethod("getXcrs", &VcpuHandle::GetXcrs), InstanceMethod("setXcrs", &VcpuHandle::SetXcrs),
                   InstanceMethod("getTscKhz", &VcpuHandle::GetTscKhz), InstanceMethod("setTscKhz", &VcpuHandle::SetTscKhz),
                   InstanceMethod("getVcpuEvents", &VcpuHandle::GetBytes<kVcpuEvents>),
                   InstanceMethod("setVcpuEvents", &VcpuHandle::SetBytes<kVcpuEvents>),
                   InstanceMethod("getDebugRegs", &VcpuHandle::GetBytes<kDebugRegs>),
                   InstanceMethod("setDebugRegs", &VcpuHandle::SetBytes<kDebugRegs>)});
}

// The exact RIP as a bigint (a double rounds kernel addresses); undefined when it cannot be read.
void VcpuHandle::SetProgramCounter(Napi::Object result) {
  Napi::Env env = result.Env();
  kvm_regs r{};
  result.Set("rip", ioctl(fd_, KVM_GET_REGS, &r) < 0 ? env.Undefined() : Napi::BigInt::New(env, static_cast<uint64_t>(r.rip)));
}

Napi::Value VcpuHandle::GetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_regs r{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_REGS, &r, "KVM_GET_REGS")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  // Exact 64-bit values (a double would round kernel addresses like RIP 0xffffffff8305e26c); rflags is a
  // number since bits 22-63 are reserved.
  for (const auto& f : kRegs) {
    uint64_t v = At64(&r, f.offset);
    o.Set(f.name, f.offset == offsetof(kvm_regs, rflags) ? U64ToNumber(env, v) : Napi::BigInt::New(env, static_cast<uint64_t>(v)));
  }
  return o;
}

// setRegs(partial): fields left out keep their current values.
Napi::Value VcpuHandle::SetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  Napi::Object o = RequireObject(info, 0, &ok);
  if (!ok || !CheckOpen(env)) return env.Undefined();
  kvm_regs r{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_REGS, &r, "KVM_GET_REGS")) return env.Undefined();
  for (const auto& f : kRegs)
    if (!FieldU64(o, f.name, &At64(&r, f.offset), At64(&r, f.offset), false)) return env.Undefined();
  IoctlOrThrow(env, fd_, KVM_SET_REGS, &r, "KVM_SET_REGS");
  return env.Undefined();
}

Napi::Value VcpuHandle::GetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_sregs s{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_SREGS, &s, "KVM_GET_SREGS")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  for (const auto& f : kSegments)
    o.Set(f.name, SegmentToJs(env, *reinterpret_cast<kvm_segment*>(reinterpret_cast<uint8_t*>(&s) + f.offset)));
  for (const auto& f : kTables) {
    auto* t = reinterpret_cast<kvm_dtable*>(reinterpret_cast<uint8_t*>(&s) + f.offset);
    Napi::Object d = Napi::Object::New(env);
    d.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(t->base)));
    d.Set("limit", Napi::Number::New(env, t->limit));
    o.Set(f.name, d);
  }
  for (const auto& f : kControl) o.Set(f.name, Napi::BigInt::New(env, static_cast<uint64_t>(At64(&s, f.offset))));
  Napi::Array bm = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; i++) bm.Set(i, Napi::BigInt::New(env, static_cast<uint64_t>(s.interrupt_bitmap[i])));
  o.Set("interruptBitmap", bm);
  return o;
}

// setSregs(partial): like setRegs, fields (and whole segments) left out keep their current values.
Napi::Value VcpuHandle::SetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  Napi::Object o = RequireObject(info, 0, &ok);
  if (!ok || !CheckOpen(env)) return env.Undefined();
  kvm_sregs s{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_SREGS, &s, "KVM_GET_SREGS")) return env.Undefined();
  for (const auto& f : kSegments) {
    Napi::Value v = o.Get(f.name);
    if (v.IsUndefined()) continue;
    if (!v.IsObject()) { ThrowType(env, (std::string(f.name) + " must be a segment object").c_str()); return env.Undefined(); }
    if (!SegmentFromJs(v.As<Napi::Object>(), reinterpret_cast<kvm_segment*>(reinterpret_cast<uint8_t*>(&s) + f.offset)))
      return env.Undefined();
  }
  for (const auto& f : kTables) {
    Napi::Value v = o.Get(f.name);
    if (v.IsUndefined()) continue;
    if (!v.IsObject()) { ThrowType(env, (std::string(f.name) + " must be {base, limit}").c_str()); return env.Undefined(); }
    auto* t = reinterpret_cast<kvm_dtable*>(reinterpret_cast<uint8_t*>(&s) + f.offset);
    uint64_t base, limit;
    if (!FieldU64(v.As<Napi::Object>(), "base", &base, 0, true) || !FieldU64(v.As<Napi::Object>(), "limit", &limit, 0, true))
      return env.Undefined();
    t->base = base;
    t->limit = static_cast<uint16_t>(limit);
  }
  for (const auto& f : kControl)
    if (!FieldU64(o, f.name, &At64(&s, f.offset), At64(&s, f.offset), false)) return env.Undefined();
  Napi::Value bm = o.Get("interruptBitmap");
  if (bm.IsArray()) {
    Napi::Array a = bm.As<Napi::Array>();
    for (uint32_t i = 0; i < 4 && i < a.Length(); i++) {
      uint64_t w;
      if (!ValueU64(env, a.Get(i), &w, "interruptBitmap word")) return env.Undefined();
      s.interrupt_bitmap[i] = w;
    }
  }
  IoctlOrThrow(env, fd_, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
  return env.Undefined();
}

Napi::Value VcpuHandle::GetFpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_fpu f{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_FPU, &f, "KVM_GET_FPU")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  Napi::Uint8Array fpr = Napi::Uint8Array::New(env, sizeof(f.fpr));
  memcpy(fpr.Data(), f.fpr, sizeof(f.fpr));
  Napi::Uint8Array xmm = Napi::Uint8Array::New(env, sizeof(f.xmm));
  memcpy(xmm.Data(), f.xmm, sizeof(f.xmm));
  o.Set("fpr", fpr);
  o.Set("fcw", Napi::Number::New(env, f.fcw));
  o.Set("fsw", Napi::Number::New(env, f.fsw));
  o.Set("ftwx", Napi::Number::New(env, f.ftwx));
  o.Set("lastOpcode", Napi::Number::New(env, f.last_opcode));
  o.Set("lastIp", Napi::BigInt::New(env, static_cast<uint64_t>(f.last_ip)));
  o.Set("lastDp", Napi::BigInt::New(env, static_cast<uint64_t>(f.last_dp)));
  o.Set("xmm", xmm);
  o.Set("mxcsr", Napi::Number::New(env, f.mxcsr));
  return o;
}

Napi::Value VcpuHandle::SetFpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  Napi::Object o = RequireObject(info, 0, &ok);
  if (!ok || !CheckOpen(env)) return env.Undefined();
  kvm_fpu f{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_FPU, &f, "KVM_GET_FPU")) return env.Undefined();
  uint64_t v;
  struct { const char* name; void* p; size_t size; } scalars[] = {
      {"fcw", &f.fcw, 2}, {"fsw", &f.fsw, 2}, {"ftwx", &f.ftwx, 1}, {"lastOpcode", &f.last_opcode, 2},
      {"lastIp", &f.last_ip, 8}, {"lastDp", &f.last_dp, 8}, {"mxcsr", &f.mxcsr, 4}};
  for (const auto& s : scalars) {
    if (o.Get(s.name).IsUndefined()) continue;
    if (!FieldU64(o, s.name, &v, 0, true)) return env.Undefined();
    memcpy(s.p, &v, s.size);  // little-endian truncation to the field width
  }
  struct { const char* name; void* p; size_t size; } arrays[] = {{"fpr", f.fpr, sizeof(f.fpr)}, {"xmm", f.xmm, sizeof(f.xmm)}};
  for (const auto& a : arrays) {
    Napi::Value av = o.Get(a.name);
    if (av.IsUndefined()) continue;
    if (!av.IsTypedArray() || av.As<Napi::TypedArray>().ByteLength() != a.size) {
      ThrowRange(env, (std::string(a.name) + " must be a Uint8Array of " + std::to_string(a.size) + " bytes").c_str());
      return env.Undefined();
    }
    Napi::TypedArray t = av.As<Napi::TypedArray>();
    memcpy(a.p, static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), a.size);
  }
  IoctlOrThrow(env, fd_, KVM_SET_FPU, &f, "KVM_SET_FPU");
  return env.Undefined();
}

// getMsrs(indices) -> [{index, value: bigint}] for the MSRs KVM could read (stops at the first failure).
Napi::Value VcpuHandle::GetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) { ThrowType(env, "getMsrs expects an array of indices"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  Napi::Array a = info[0].As<Napi::Array>();
  uint32_t n = a.Length();
  if (n > 1024) { ThrowRange(env, "too many MSRs"); return env.Undefined(); }
  VarArg<MsrsHeader, kvm_msr_entry> m(n);
  m.header()->nmsrs = n;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t idx;
    if (!ValueU64(env, a.Get(i), &idx, "MSR index")) return env.Undefined();
    m.entries()[i].index = static_cast<uint32_t>(idx);
  }
  int r = ioctl(fd_, kGetMsrs, m.arg());
  if (r < 0) { ThrowKvmError(env, "KVM_GET_MSRS", errno); return env.Undefined(); }
  Napi::Array out = Napi::Array::New(env, r);
  for (int i = 0; i < r; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("index", Napi::Number::New(env, m.entries()[i].index));
    e.Set("value", Napi::BigInt::New(env, static_cast<uint64_t>(m.entries()[i].data)));
    out.Set(i, e);
  }
  return out;
}

// setMsrs(entries) -> number of MSRs written (stops at the first failure).
Napi::Value VcpuHandle::SetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) { ThrowType(env, "setMsrs expects an array of {index, value}"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  Napi::Array a = info[0].As<Napi::Array>();
  uint32_t n = a.Length();
  if (n > 1024) { ThrowRange(env, "too many MSRs"); return env.Undefined(); }
  VarArg<MsrsHeader, kvm_msr_entry> m(n);
  m.header()->nmsrs = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value ev = a.Get(i);
    if (!ev.IsObject()) { ThrowType(env, "MSR entry must be {index, value}"); return env.Undefined(); }
    uint64_t idx, val;
    if (!FieldU64(ev.As<Napi::Object>(), "index", &idx, 0, true) || !FieldU64(ev.As<Napi::Object>(), "value", &val, 0, true))
      return env.Undefined();
    m.entries()[i].index = static_cast<uint32_t>(idx);
    m.entries()[i].data = val;
  }
  int r = ioctl(fd_, kSetMsrs, m.arg());
  if (r < 0) { ThrowKvmError(env, "KVM_SET_MSRS", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

Napi::Value VcpuHandle::SetCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) { ThrowType(env, "setCpuid expects an array of entries"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  Napi::Array a = info[0].As<Napi::Array>();
  uint32_t n = a.Length();
  if (n > 4096) { ThrowRange(env, "too many CPUID entries"); return env.Undefined(); }
  VarArg<CpuidHeader, kvm_cpuid_entry2> c(n);
  c.header()->nent = n;
  static const char* kFields[] = {"function", "index", "flags", "eax", "ebx", "ecx", "edx"};
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value ev = a.Get(i);
    if (!ev.IsObject()) { ThrowType(env, "CPUID entry must be an object"); return env.Undefined(); }
    uint32_t* dst[] = {&c.entries()[i].function, &c.entries()[i].index, &c.entries()[i].flags, &c.entries()[i].eax,
                       &c.entries()[i].ebx, &c.entries()[i].ecx, &c.entries()[i].edx};
    for (int k = 0; k < 7; k++) {
      uint64_t v;
      if (!FieldU64(ev.As<Napi::Object>(), kFields[k], &v, 0, k < 1 || k > 2)) return env.Undefined();
      *dst[k] = static_cast<uint32_t>(v);
    }
  }
  IoctlOrThrow(env, fd_, kSetCpuid2, c.arg(), "KVM_SET_CPUID2");
  return env.Undefined();
}

Napi::Value VcpuHandle::GetLapic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_lapic_state s{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_LAPIC, &s, "KVM_GET_LAPIC")) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, sizeof(s.regs));
  memcpy(out.Data(), s.regs, sizeof(s.regs));
  return out;
}

Napi::Value VcpuHandle::SetLapic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_lapic_state s{};
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().ByteLength() != sizeof(s.regs)) {
    ThrowRange(env, "LAPIC state must be a Uint8Array of 1024 bytes");
    return env.Undefined();
  }
  if (!CheckOpen(env)) return env.Undefined();
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  memcpy(s.regs, static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), sizeof(s.regs));
  IoctlOrThrow(env, fd_, KVM_SET_LAPIC, &s, "KVM_SET_LAPIC");
  return env.Undefined();
}

// setPmTimer(port, startNs: bigint): reads of the 4 ports from `port` return the 24-bit ACPI PM timer (3.579545 MHz)
// counted from `startNs` on CLOCK_MONOTONIC (node's process.hrtime clock), answered in the run loop; port 0 stops.
Napi::Value VcpuHandle::SetPmTimer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t port;
  if (!ArgU32(info, 0, &port) || port > 0xfffc) { ThrowRange(env, "setPmTimer: port must be 0 to 0xfffc"); return env.Undefined(); }
  bool lossless = false;
  if (!info[1].IsBigInt()) { ThrowType(env, "setPmTimer: startNs must be a bigint (process.hrtime.bigint())"); return env.Undefined(); }
  const int64_t start = info[1].As<Napi::BigInt>().Int64Value(&lossless);
  if (!lossless) { ThrowRange(env, "setPmTimer: startNs out of range"); return env.Undefined(); }
  pmTimerPort_ = port;
  pmTimerStartNs_ = start;
  return env.Undefined();
}

// getXsave(size) -> Uint8Array: KVM_GET_XSAVE for 4096 bytes, KVM_GET_XSAVE2 for the larger size
// KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) reports on the VM fd (dynamically enabled features such as AMX).
Napi::Value VcpuHandle::GetXsave(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t size;
  if (!ArgU32(info, 0, &size)) return env.Undefined();
  if (size < sizeof(XsaveArea) || size % 8 || size > (1u << 20)) { ThrowRange(env, "xsave size must be a multiple of 8 from 4096 to 1 MiB"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  std::vector<uint64_t> buf(size / 8);
  const bool v2 = size > sizeof(XsaveArea);
  if (!IoctlOrThrow(env, fd_, v2 ? kGetXsave2 : kGetXsave, buf.data(), v2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE")) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, size);
  memcpy(out.Data(), buf.data(), size);
  return out;
}

// setXsave(bytes): KVM_SET_XSAVE reads as many bytes as KVM_GET_XSAVE2 wrote (4096 without it); the caller
// passes exactly that many (Vcpu.setXsave checks).
Napi::Value VcpuHandle::SetXsave(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t len;
  const uint8_t* p = BytesArg(info, 0, 0, "xsave state", &len);
  if (!p) return env.Undefined();
  if (len < sizeof(XsaveArea) || len % 8) { ThrowRange(env, "xsave state must be a multiple of 8 bytes, at least 4096"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  std::vector<uint64_t> buf(len / 8);
  memcpy(buf.data(), p, len);
  IoctlOrThrow(env, fd_, kSetXsave, buf.data(), "KVM_SET_XSAVE");
  return env.Undefined();
}

// getXcrs() -> [{xcr, value: bigint}] (XCR0 is xcr 0).
Napi::Value VcpuHandle::GetXcrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_xcrs x{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_XCRS, &x, "KVM_GET_XCRS")) return env.Undefined();
  const uint32_t n = std::min<uint32_t>(x.nr_xcrs, KVM_MAX_XCRS);
  Napi::Array out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("xcr", Napi::Number::New(env, x.xcrs[i].xcr));
    e.Set("value", Napi::BigInt::New(env, static_cast<uint64_t>(x.xcrs[i].value)));
    out.Set(i, e);
  }
  return out;
}

Napi::Value VcpuHandle::SetXcrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) { ThrowType(env, "setXcrs expects an array of {xcr, value}"); return env.Undefined(); }
  Napi::Array a = info[0].As<Napi::Array>();
  if (a.Length() > KVM_MAX_XCRS) { ThrowRange(env, "at most 16 XCRs"); return env.Undefined(); }
  if (!CheckOpen(env)) return env.Undefined();
  kvm_xcrs x{};
  x.nr_xcrs = a.Length();
  for (uint32_t i = 0; i < x.nr_xcrs; i++) {
    Napi::Value ev = a.Get(i);
    if (!ev.IsObject()) { ThrowType(env, "XCR entry must be {xcr, value}"); return env.Undefined(); }
    uint64_t xcr, value;
    if (!FieldU64(ev.As<Napi::Object>(), "xcr", &xcr, 0, true) || !FieldU64(ev.As<Napi::Object>(), "value", &value, 0, true))
      return env.Undefined();
    x.xcrs[i].xcr = static_cast<uint32_t>(xcr);
    x.xcrs[i].value = value;
  }
  IoctlOrThrow(env, fd_, KVM_SET_XCRS, &x, "KVM_SET_XCRS");
  return env.Undefined();
}

// getTscKhz() -> the guest TSC frequency in kHz (KVM_GET_TSC_KHZ returns it).
Napi::Value VcpuHandle::GetTscKhz(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int r = ioctl(fd_, KVM_GET_TSC_KHZ, 0);
  if (r < 0) { ThrowKvmError(env, "KVM_GET_TSC_KHZ", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

Napi::Value VcpuHandle::SetTscKhz(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t khz;
  if (!ArgU32(info, 0, &khz) || !CheckOpen(env)) return env.Undefined();
  if (ioctl(fd_, KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0) ThrowKvmError(env, "KVM_SET_TSC_KHZ", errno);
  return env.Undefined();
}

}  // namespace kvmn
