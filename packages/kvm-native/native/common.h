// Shared helpers of the KVM binding: argument conversion and typed errors.
#pragma once
#include <napi.h>
#include <cstdint>

// The binding has two architecture halves (native/x86-*, native/arm64-*; binding.gyp picks one by target_arch).
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "@vmm/kvm-native supports x86_64 and arm64 hosts only"
#endif

namespace kvmn {

struct AddonData {
  Napi::FunctionReference kvmErrorCtor;  // the TypeScript KvmError class, set by setErrorClass()
  Napi::FunctionReference vcpuCtor;
};

// Throws a KvmError(syscall, errno) into JS; callers return right after.
void ThrowKvmError(Napi::Env env, const char* syscall, int err);
// ioctl(fd, request, arg); on failure throws a KvmError naming `name` and returns false.
bool IoctlOrThrow(Napi::Env env, int fd, unsigned long request, void* arg, const char* name);
// Throws a TypeError/RangeError; returns false so callers can `return Fail(...)`-style bail out.
void ThrowType(Napi::Env env, const char* msg);
void ThrowRange(Napi::Env env, const char* msg);

// Argument readers: set *ok=false and throw on bad input.
bool ArgU32(const Napi::CallbackInfo& info, size_t i, uint32_t* out);
bool ArgI32(const Napi::CallbackInfo& info, size_t i, int32_t* out);
// Accepts a non-negative integer number (exact below 2^53) or a bigint.
bool ValueU64(Napi::Env env, Napi::Value v, uint64_t* out, const char* what);
bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out);
// Reads an optional object field as u64 (missing -> dflt).
bool FieldU64(Napi::Object o, const char* key, uint64_t* out, uint64_t dflt, bool required);
Napi::Value U64ToNumber(Napi::Env env, uint64_t v);

void InitErrors(Napi::Env env, Napi::Object exports);
void InitKvm(Napi::Env env, Napi::Object exports);
void InitVm(Napi::Env env, Napi::Object exports);
void InitDevice(Napi::Env env, Napi::Object exports);
void InitVcpu(Napi::Env env, Napi::Object exports);
// Demand paging of guest RAM through userfaultfd (uffd.cc).
void InitUserfault(Napi::Env env, Napi::Object exports);
// The host architecture's VM-level calls (native/x86-*.cc or native/arm64-*.cc).
void InitArch(Napi::Env env, Napi::Object exports);

}  // namespace kvmn
