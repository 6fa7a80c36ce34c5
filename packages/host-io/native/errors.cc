// System-call failures become instances of the TypeScript HostIoError class (registered at load), carrying the
// errno name ("EBUSY") and the system call; and the argument readers of common.h.
#include "common.h"
#include <cmath>
#include <cstring>
#include <string>

namespace hostio {

void ThrowSysError(Napi::Env env, const char* syscall, int err) {
  const char* name = strerrorname_np(err);
  std::string errnoName = name ? name : ("E" + std::to_string(err));
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->errorCtor.IsEmpty()) {
    Napi::Object e = data->errorCtor.New({Napi::String::New(env, syscall), Napi::String::New(env, errnoName),
                                          Napi::Number::New(env, err), Napi::String::New(env, strerror(err))});
    if (!env.IsExceptionPending()) Napi::Error(env, e).ThrowAsJavaScriptException();
    return;
  }
  // No class registered (the raw addon, in a worker say): a plain Error with the same fields.
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + errnoName);
  e.Set("errno", Napi::String::New(env, errnoName));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const char* msg) { Napi::TypeError::New(env, msg).ThrowAsJavaScriptException(); }
void ThrowRange(Napi::Env env, const char* msg) { Napi::RangeError::New(env, msg).ThrowAsJavaScriptException(); }

// An integer number in [lo, hi].
static bool ArgInteger(const Napi::CallbackInfo& info, size_t i, double lo, double hi, double* out) {
  if (!info[i].IsNumber()) { ThrowType(info.Env(), "expected a number argument"); return false; }
  *out = info[i].As<Napi::Number>().DoubleValue();
  if (*out >= lo && *out <= hi && std::floor(*out) == *out) return true;
  ThrowRange(info.Env(), "integer argument out of range");
  return false;
}

bool ArgI32(const Napi::CallbackInfo& info, size_t i, int32_t* out) {
  double d;
  if (!ArgInteger(info, i, INT32_MIN, INT32_MAX, &d)) return false;
  *out = static_cast<int32_t>(d);
  return true;
}

bool ArgU32(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  double d;
  if (!ArgInteger(info, i, 0, UINT32_MAX, &d)) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  if (info[i].IsBigInt()) {
    bool lossless = false;
    *out = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(info.Env(), "bigint argument does not fit in 64 bits");
    return lossless;
  }
  double d;
  if (!ArgInteger(info, i, 0, 9007199254740991.0, &d)) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), "expected a Uint8Array");
    return false;
  }
  auto a = info[i].As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) { ThrowType(info.Env(), "setErrorClass expects a constructor"); return info.Env().Undefined(); }
  info.Env().GetInstanceData<AddonData>()->errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

}  // namespace hostio
