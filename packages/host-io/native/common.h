// Shared helpers of the host I/O binding: typed errors and the few argument readers its calls need.
#pragma once
#include <napi.h>
#include <cstdint>

namespace hostio {

struct AddonData {
  Napi::FunctionReference errorCtor;  // the TypeScript HostIoError class, set by setErrorClass()
  Napi::FunctionReference fdPollCtor;
  Napi::FunctionReference readablePollCtor;
};

// Throws a HostIoError(syscall, errno) into JS; callers return right after.
void ThrowSysError(Napi::Env env, const char* syscall, int err);
void ThrowType(Napi::Env env, const char* msg);
void ThrowRange(Napi::Env env, const char* msg);

// Argument readers: throw (TypeError/RangeError) and return false on bad input.
bool ArgI32(const Napi::CallbackInfo& info, size_t i, int32_t* out);
bool ArgU32(const Napi::CallbackInfo& info, size_t i, uint32_t* out);
// A non-negative safe integer number or a bigint that fits in 64 bits.
bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out);
// A Uint8Array's bytes.
bool ArgBytes(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len);

void InitErrors(Napi::Env env, Napi::Object exports);
void InitEventFd(Napi::Env env, Napi::Object exports);
void InitFdPoll(Napi::Env env, Napi::Object exports);
void InitTap(Napi::Env env, Napi::Object exports);
void InitFile(Napi::Env env, Napi::Object exports);
void InitMemfd(Napi::Env env, Napi::Object exports);
void InitUnixSocket(Napi::Env env, Napi::Object exports);
void InitMapping(Napi::Env env, Napi::Object exports);
void InitIoctl(Napi::Env env, Napi::Object exports);

}  // namespace hostio
