// VM-level ioctls both architectures share: guest memory, memslots, dirty log, IRQ lines, MSI, GSI routing,
// irqfd, ioeventfd and vCPU fd creation. Every call is one ioctl; policy lives in TypeScript. The x86 irqchip,
// PIT, TSS and identity map live in x86-kvm.cc, arm64's in arm64-kvm.cc.
#include "common.h"
#include "kvm-abi.h"
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <string>
#include <vector>

namespace kvmn {

static const uint64_t kPage = 4096;

// One anonymous mapping, viewed by one or more external ArrayBuffers (chunks: V8 caps one ArrayBuffer at
// buffer.constants.MAX_LENGTH, 4 GiB on Node 20). Each chunk holds a reference; the last one collected unmaps.
struct GuestMapping {
  void* base;
  size_t size;
  std::atomic<uint32_t> refs;
};

static void ReleaseMapping(napi_env env, GuestMapping* m) {
  if (m->refs.fetch_sub(1) != 1) return;
  munmap(m->base, m->size);
  int64_t unused;
  napi_adjust_external_memory(env, -static_cast<int64_t>(m->size), &unused);
  delete m;
}

static void FinalizeChunk(napi_env env, void* data, void* /*hint*/) { ReleaseMapping(env, static_cast<GuestMapping*>(data)); }
static void NoFinalizer(napi_env, void*, void*) {}

// Views `size` bytes at `p` as chunks of chunkSize bytes (the last may be shorter), no copies; the mapping is
// unmapped when the last chunk is collected (or at once when no chunk could be made).
static Napi::Value ChunkMapping(Napi::Env env, void* p, uint64_t size, uint64_t chunk) {
  auto* m = new GuestMapping{p, size, {1}};  // this call's own reference, dropped below
  const uint64_t n = (size + chunk - 1) / chunk;
  Napi::Array out = Napi::Array::New(env, n);
  bool ok = true;
  for (uint64_t i = 0; i < n && ok; i++) {
    const uint64_t off = i * chunk;
    napi_value ab;
    // The buffer's own finalizer owns nothing: when creating the buffer fails, Node has already run it (and
    // node-addon-api then freed its wrapper a second time: the old double free). The reference is attached
    // only to a buffer that exists, so it is dropped exactly once.
    ok = napi_create_external_arraybuffer(env, static_cast<uint8_t*>(p) + off, std::min(chunk, size - off), NoFinalizer,
                                          nullptr, &ab) == napi_ok &&
         napi_add_finalizer(env, ab, m, FinalizeChunk, nullptr, nullptr) == napi_ok;
    if (ok) {
      m->refs.fetch_add(1);
      out.Set(static_cast<uint32_t>(i), ab);
    }
  }
  // Told to V8 once all chunks exist (before, each new chunk could start a GC); undone by the last release.
  int64_t unused;
  napi_adjust_external_memory(env, static_cast<int64_t>(size), &unused);
  ReleaseMapping(env, m);  // unmaps now when no chunk took a reference
  if (!ok) {
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    ThrowRange(env, ("guest memory chunk of " + std::to_string(std::min(chunk, size)) +
                     " bytes cannot be made an ArrayBuffer (too large for this Node?)").c_str());
    return env.Undefined();
  }
  return out;
}

static bool ArgSizes(const Napi::CallbackInfo& info, uint64_t* size, uint64_t* chunk) {
  if (!ArgU64(info, 0, size) || !ArgU64(info, 1, chunk)) return false;
  if (*size == 0 || *size % kPage != 0 || *chunk == 0 || *chunk % kPage != 0) {
    ThrowRange(info.Env(), "memory size and chunk size must be non-zero multiples of 4096");
    return false;
  }
  return true;
}

// allocateMemory(size, chunkSize) -> ArrayBuffer[]: anonymous, page-aligned, zero-filled memory (MAP_NORESERVE:
// pages are only backed once touched), split into chunks of chunkSize bytes.
static Napi::Value AllocateMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size, chunk;
  if (!ArgSizes(info, &size, &chunk)) return env.Undefined();
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) { ThrowKvmError(env, "mmap", errno); return env.Undefined(); }
  madvise(p, size, MADV_MERGEABLE);
  return ChunkMapping(env, p, size, chunk);
}

// seekFile(fd, offset, data) -> the next offset at or after `offset` where data (true: SEEK_DATA) or a hole
// (false: SEEK_HOLE) starts, or -1 when there is no more data (ENXIO). Which pages of a memfd were ever written.
static Napi::Value SeekFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean()) {
    ThrowType(env, "seekFile(fd, offset, data)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t offset = info[1].As<Napi::Number>().Int64Value();
  off_t at = lseek(fd, static_cast<off_t>(offset), info[2].As<Napi::Boolean>().Value() ? SEEK_DATA : SEEK_HOLE);
  if (at < 0 && errno == ENXIO) return Napi::Number::New(env, -1);
  if (at < 0) {
    ThrowKvmError(env, "lseek", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(at));
}

// allocateSharedMemory(size, chunkSize, name) -> { fd, chunks }: like allocateMemory, but the pages belong to a
// memfd (close-on-exec, sparse: pages are backed once touched) mapped MAP_SHARED, so another process given the
// fd (a vfio-user device server) maps the same guest RAM. The caller owns `fd`; the mapping outlives it.
static Napi::Value AllocateSharedMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size, chunk;
  if (!ArgSizes(info, &size, &chunk)) return env.Undefined();
  std::string name = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "guest-ram";
  if (name.size() > 249 || name.find('\0') != std::string::npos) { ThrowRange(env, "memfd name must be at most 249 bytes without NUL"); return env.Undefined(); }
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) { ThrowKvmError(env, "memfd_create", errno); return env.Undefined(); }
  if (ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    close(fd);
    ThrowKvmError(env, "ftruncate", err);
    return env.Undefined();
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    ThrowKvmError(env, "mmap", err);
    return env.Undefined();
  }
  Napi::Value chunks = ChunkMapping(env, p, size, chunk);
  if (env.IsExceptionPending()) {
    close(fd);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("chunks", chunks);
  return out;
}

static bool TypedArrayRange(Napi::Env env, Napi::Value v, uint8_t** ptr, size_t* len) {
  if (!v.IsTypedArray()) { ThrowType(env, "memory must be a Uint8Array"); return false; }
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  *ptr = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  *len = t.ByteLength();
  return true;
}

// A Uint8Array, or an array of Uint8Arrays that must lie back to back in memory (the chunks of one mapping).
static bool MemoryRange(Napi::Env env, Napi::Value v, uint8_t** ptr, uint64_t* len) {
  if (!v.IsArray()) {
    size_t l;
    if (!TypedArrayRange(env, v, ptr, &l)) return false;
    *len = l;
    return true;
  }
  Napi::Array a = v.As<Napi::Array>();
  *len = 0;
  *ptr = nullptr;
  for (uint32_t i = 0; i < a.Length(); i++) {
    uint8_t* p;
    size_t l;
    if (!TypedArrayRange(env, a.Get(i), &p, &l)) return false;
    if (i == 0) *ptr = p;
    else if (p != *ptr + *len) { ThrowRange(env, "memory chunks must be contiguous"); return false; }
    *len += l;
  }
  return true;
}

// setUserMemoryRegion(vmFd, slot, flags, guestPhysAddr, memory | chunks | undefined): undefined removes the slot.
static Napi::Value SetUserMemoryRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t slot, flags;
  uint64_t gpa;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &slot) || !ArgU32(info, 2, &flags) || !ArgU64(info, 3, &gpa)) return env.Undefined();
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = gpa;
  if (!info[4].IsUndefined()) {
    uint8_t* p;
    uint64_t len;
    if (!MemoryRange(env, info[4], &p, &len)) return env.Undefined();
    if (len == 0 || len % kPage || reinterpret_cast<uintptr_t>(p) % kPage || gpa % kPage) {
      ThrowRange(env, "memslot memory, size and guest address must be page aligned and non-empty");
      return env.Undefined();
    }
    r.memory_size = len;
    r.userspace_addr = reinterpret_cast<uintptr_t>(p);
  }
  IoctlOrThrow(env, fd, KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION");
  return env.Undefined();
}

// getDirtyLog(vmFd, slot, pages) -> Uint8Array bitmap, one bit per page (LSB first), cleared by the read.
static Napi::Value GetDirtyLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t slot, pages;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &slot) || !ArgU32(info, 2, &pages)) return env.Undefined();
  size_t bytes = ((static_cast<size_t>(pages) + 63) / 64) * 8;
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes);
  kvm_dirty_log d{};
  d.slot = slot;
  d.dirty_bitmap = out.Data();
  if (!IoctlOrThrow(env, fd, KVM_GET_DIRTY_LOG, &d, "KVM_GET_DIRTY_LOG")) return env.Undefined();
  return out;
}

// irqLine(vmFd, irq, level): `irq` is a GSI on x86 and arm64's (type, vcpu, number) encoding (made in TypeScript).
static Napi::Value IrqLine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t gsi, level;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &gsi) || !ArgU32(info, 2, &level)) return env.Undefined();
  kvm_irq_level l{};
  l.irq = gsi;
  l.level = level ? 1 : 0;
  IoctlOrThrow(env, fd, KVM_IRQ_LINE, &l, "KVM_IRQ_LINE");
  return env.Undefined();
}

// An optional device id (the MSI's requester: arm64's ITS needs it, KVM_CAP_MSI_DEVID); undefined: none.
static bool ArgDevid(const Napi::CallbackInfo& info, size_t i, bool* has, uint32_t* devid) {
  *has = !info[i].IsUndefined();
  return !*has || ArgU32(info, i, devid);
}

// signalMsi(vmFd, address, data, devid?) -> number of interrupts delivered (0: blocked by the guest).
static Napi::Value SignalMsi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t addr;
  uint32_t data, devid = 0;
  bool hasDevid;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &addr) || !ArgU32(info, 2, &data) || !ArgDevid(info, 3, &hasDevid, &devid))
    return env.Undefined();
  kvm_msi m{};
  m.address_lo = static_cast<uint32_t>(addr);
  m.address_hi = static_cast<uint32_t>(addr >> 32);
  m.data = data;
  if (hasDevid) {
    m.flags = KVM_MSI_VALID_DEVID;
    m.devid = devid;
  }
  int r = ioctl(fd, KVM_SIGNAL_MSI, &m);
  if (r < 0) { ThrowKvmError(env, "KVM_SIGNAL_MSI", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

// setGsiRouting(vmFd, entries): {gsi, type: "irqchip", irqchip, pin} | {gsi, type: "msi", address, data, devid?}.
static Napi::Value SetGsiRouting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  if (!info[1].IsArray()) { ThrowType(env, "routing entries must be an array"); return env.Undefined(); }
  Napi::Array a = info[1].As<Napi::Array>();
  uint32_t n = a.Length();
  if (n > 4096) { ThrowRange(env, "too many routing entries"); return env.Undefined(); }
  VarArg<RoutingHeader, kvm_irq_routing_entry> rt(n);
  rt.header()->nr = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value ev = a.Get(i);
    if (!ev.IsObject()) { ThrowType(env, "routing entry must be an object"); return env.Undefined(); }
    Napi::Object o = ev.As<Napi::Object>();
    kvm_irq_routing_entry& e = rt.entries()[i];
    uint64_t gsi, x, y;
    if (!FieldU64(o, "gsi", &gsi, 0, true)) return env.Undefined();
    e.gsi = static_cast<uint32_t>(gsi);
    std::string type = o.Get("type").ToString();
    if (type == "irqchip") {
      if (!FieldU64(o, "irqchip", &x, 0, true) || !FieldU64(o, "pin", &y, 0, true)) return env.Undefined();
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = static_cast<uint32_t>(x);
      e.u.irqchip.pin = static_cast<uint32_t>(y);
    } else if (type == "msi") {
      if (!FieldU64(o, "address", &x, 0, true) || !FieldU64(o, "data", &y, 0, true)) return env.Undefined();
      e.type = KVM_IRQ_ROUTING_MSI;
      e.u.msi.address_lo = static_cast<uint32_t>(x);
      e.u.msi.address_hi = static_cast<uint32_t>(x >> 32);
      e.u.msi.data = static_cast<uint32_t>(y);
      if (!o.Get("devid").IsUndefined()) {
        if (!FieldU64(o, "devid", &x, 0, true)) return env.Undefined();
        e.flags = KVM_MSI_VALID_DEVID;
        e.u.msi.devid = static_cast<uint32_t>(x);
      }
    } else {
      ThrowType(env, "routing entry type must be \"irqchip\" or \"msi\"");
      return env.Undefined();
    }
  }
  IoctlOrThrow(env, fd, kSetGsiRouting, rt.arg(), "KVM_SET_GSI_ROUTING");
  return env.Undefined();
}

// irqfd(vmFd, eventFd, gsi, resampleFd (-1: none), deassign)
static Napi::Value Irqfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd, efd, rfd;
  uint32_t gsi;
  if (!ArgI32(info, 0, &fd) || !ArgI32(info, 1, &efd) || !ArgU32(info, 2, &gsi) || !ArgI32(info, 3, &rfd)) return env.Undefined();
  kvm_irqfd f{};
  f.fd = static_cast<uint32_t>(efd);
  f.gsi = gsi;
  if (info[4].ToBoolean()) {
    f.flags = KVM_IRQFD_FLAG_DEASSIGN;
  } else if (rfd >= 0) {
    f.flags = KVM_IRQFD_FLAG_RESAMPLE;
    f.resamplefd = static_cast<uint32_t>(rfd);
  }
  IoctlOrThrow(env, fd, KVM_IRQFD, &f, "KVM_IRQFD");
  return env.Undefined();
}

// ioeventfd(vmFd, eventFd, address, len, flags, datamatch)
static Napi::Value Ioeventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd, efd;
  uint64_t addr, match;
  uint32_t len, flags;
  if (!ArgI32(info, 0, &fd) || !ArgI32(info, 1, &efd) || !ArgU64(info, 2, &addr) || !ArgU32(info, 3, &len) ||
      !ArgU32(info, 4, &flags) || !ArgU64(info, 5, &match))
    return env.Undefined();
  kvm_ioeventfd e{};
  e.datamatch = match;
  e.addr = addr;
  e.len = len;
  e.fd = efd;
  e.flags = flags;
  IoctlOrThrow(env, fd, KVM_IOEVENTFD, &e, "KVM_IOEVENTFD");
  return env.Undefined();
}

static Napi::Value CreateVcpuFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t id;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &id)) return env.Undefined();
  int r = ioctl(fd, KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (r < 0) { ThrowKvmError(env, "KVM_CREATE_VCPU", errno); return env.Undefined(); }
  fcntl(r, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, r);
}

void InitVm(Napi::Env env, Napi::Object exports) {
  exports.Set("allocateMemory", Napi::Function::New(env, AllocateMemory, "allocateMemory"));
  exports.Set("allocateSharedMemory", Napi::Function::New(env, AllocateSharedMemory, "allocateSharedMemory"));
  exports.Set("seekFile", Napi::Function::New(env, SeekFile, "seekFile"));
  exports.Set("setUserMemoryRegion", Napi::Function::New(env, SetUserMemoryRegion, "setUserMemoryRegion"));
  exports.Set("getDirtyLog", Napi::Function::New(env, GetDirtyLog, "getDirtyLog"));
  exports.Set("irqLine", Napi::Function::New(env, IrqLine, "irqLine"));
  exports.Set("signalMsi", Napi::Function::New(env, SignalMsi, "signalMsi"));
  exports.Set("setGsiRouting", Napi::Function::New(env, SetGsiRouting, "setGsiRouting"));
  exports.Set("irqfd", Napi::Function::New(env, Irqfd, "irqfd"));
  exports.Set("ioeventfd", Napi::Function::New(env, Ioeventfd, "ioeventfd"));
  exports.Set("createVcpuFd", Napi::Function::New(env, CreateVcpuFd, "createVcpuFd"));
}

}  // namespace kvmn
