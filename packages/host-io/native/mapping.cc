// Shared mappings of another file's pages (a memfd from a vfio-user server, a VFIO device fd's BAR region) seen
// from JS as a Uint8Array without copies. The mapping lives until the last view of it is collected, so no JS code
// can reach unmapped memory; a KVM memslot that uses it must be removed first (the caller keeps the view).
#include "common.h"
#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace hostio {

static void Unmap(napi_env env, void* data, void* hint) {
  const size_t length = reinterpret_cast<size_t>(hint);
  munmap(data, length);
  int64_t unused;
  napi_adjust_external_memory(env, -static_cast<int64_t>(length), &unused);
}

// mapFd(fd, offset, length, writable) -> ArrayBuffer (MAP_SHARED, PROT_READ [| PROT_WRITE]).
static Napi::Value MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t offset, length;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &offset) || !ArgU64(info, 2, &length)) return env.Undefined();
  const long page = sysconf(_SC_PAGESIZE);
  if (length == 0 || offset % page != 0) { ThrowRange(env, "mapFd: length must be non-zero and offset page aligned"); return env.Undefined(); }
  const int prot = PROT_READ | (info[3].ToBoolean().Value() ? PROT_WRITE : 0);
  void* p = mmap(nullptr, length, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) { ThrowSysError(env, "mmap", errno); return env.Undefined(); }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, length, Unmap, reinterpret_cast<void*>(static_cast<size_t>(length)), &ab) != napi_ok) {
    // Node already ran the finalizer when creation failed: nothing left to unmap here.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    ThrowRange(env, "mapFd: the mapping cannot be made an ArrayBuffer (too large for this Node?)");
    return env.Undefined();
  }
  int64_t unused;
  napi_adjust_external_memory(env, static_cast<int64_t>(length), &unused);
  return Napi::Value(env, ab);
}

// bufferAddress(bytes) -> bigint: the virtual address of the first byte (VFIO's MAP_DMA takes one).
static Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t len;
  if (!ArgBytes(info, 0, &data, &len)) return env.Undefined();
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

// viewMapping(address, length) -> ArrayBuffer over memory this process has mapped already (another thread's
// mapping), after mincore() confirmed every page of the range is mapped. No finalizer: the view neither maps nor
// unmaps; its owner keeps the mapping alive while the view's thread may use it.
static Napi::Value ViewMapping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t address, length;
  if (!ArgU64(info, 0, &address) || !ArgU64(info, 1, &length)) return env.Undefined();
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (length == 0 || address % page != 0 || address == 0 || address + length < address) {
    ThrowRange(env, "viewMapping: the address must be page aligned and non-zero, the length non-zero");
    return env.Undefined();
  }
  void* p = reinterpret_cast<void*>(static_cast<uintptr_t>(address));
  std::vector<unsigned char> resident((length + page - 1) / page);
  if (mincore(p, length, resident.data()) != 0) { ThrowSysError(env, "mincore", errno); return env.Undefined(); }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, length, nullptr, nullptr, &ab) != napi_ok) {
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    ThrowRange(env, "viewMapping: the range cannot be made an ArrayBuffer (too large for this Node?)");
    return env.Undefined();
  }
  return Napi::Value(env, ab);
}

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("viewMapping", Napi::Function::New(env, ViewMapping, "viewMapping"));
  exports.Set("mapFd", Napi::Function::New(env, MapFd, "mapFd"));
  exports.Set("bufferAddress", Napi::Function::New(env, BufferAddress, "bufferAddress"));
}

}  // namespace hostio
