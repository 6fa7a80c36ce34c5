// System-call failures become instances of the TypeScript KvmError class (registered at load),
// carrying the errno name ("EEXIST") and the ioctl or syscall name.
#include "common.h"
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/ioctl.h>

namespace kvmn {

bool IoctlOrThrow(Napi::Env env, int fd, unsigned long request, void* arg, const char* name) {
  if (ioctl(fd, request, arg) >= 0) return true;
  ThrowKvmError(env, name, errno);
  return false;
}

void ThrowKvmError(Napi::Env env, const char* syscall, int err) {
  const char* name = strerrorname_np(err);
  std::string errnoName = name ? name : ("E" + std::to_string(err));
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->kvmErrorCtor.IsEmpty()) {
    Napi::Object e = data->kvmErrorCtor.New({Napi::String::New(env, syscall), Napi::String::New(env, errnoName),
                                             Napi::Number::New(env, err), Napi::String::New(env, strerror(err))});
    if (env.IsExceptionPending()) return;
    NAPI_THROW_VOID(Napi::Error(env, e));
  }
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + errnoName + " (" + strerror(err) + ")");
  e.Set("errno", Napi::String::New(env, errnoName));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const char* msg) { Napi::TypeError::New(env, msg).ThrowAsJavaScriptException(); }
void ThrowRange(Napi::Env env, const char* msg) { Napi::RangeError::New(env, msg).ThrowAsJavaScriptException(); }

bool ArgU32(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) { ThrowType(info.Env(), "expected a number argument"); return false; }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || std::floor(d) != d) { ThrowRange(info.Env(), "expected an unsigned 32-bit integer"); return false; }
  *out = static_cast<uint32_t>(d);
  return true;
}

bool ArgI32(const Napi::CallbackInfo& info, size_t i, int32_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) { ThrowType(info.Env(), "expected a number argument"); return false; }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || std::floor(d) != d) { ThrowRange(info.Env(), "expected a 32-bit integer"); return false; }
  *out = static_cast<int32_t>(d);
  return true;
}

bool ValueU64(Napi::Env env, Napi::Value v, uint64_t* out, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) { ThrowRange(env, (std::string(what) + " does not fit in 64 bits").c_str()); return false; }
    return true;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) {
      ThrowRange(env, (std::string(what) + " must be a non-negative safe integer or a bigint").c_str());
      return false;
    }
    *out = static_cast<uint64_t>(d);
    return true;
  }
  ThrowType(env, (std::string(what) + " must be a number or bigint").c_str());
  return false;
}

bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) { return ValueU64(info.Env(), info[i], out, "argument"); }

bool FieldU64(Napi::Object o, const char* key, uint64_t* out, uint64_t dflt, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) { ThrowType(o.Env(), (std::string("missing field ") + key).c_str()); return false; }
    *out = dflt;
    return true;
  }
  return ValueU64(o.Env(), v, out, key);
}

Napi::Value U64ToNumber(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) { ThrowType(info.Env(), "setErrorClass expects a constructor"); return info.Env().Undefined(); }
  info.Env().GetInstanceData<AddonData>()->kvmErrorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

}  // namespace kvmn
