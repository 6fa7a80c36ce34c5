// arm64's VM-level calls. The vGIC is a KVM device (device.cc); what is left is the CPU target the host
// prefers, which every vCPU's KVM_ARM_VCPU_INIT names.
#include "common.h"
#include <linux/kvm.h>

namespace kvmn {

// armPreferredTarget(vmFd) -> { target, features: number[7] } (KVM_ARM_PREFERRED_TARGET)
static Napi::Value ArmPreferredTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  kvm_vcpu_init init{};
  if (!IoctlOrThrow(env, fd, KVM_ARM_PREFERRED_TARGET, &init, "KVM_ARM_PREFERRED_TARGET")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("target", Napi::Number::New(env, init.target));
  constexpr uint32_t n = sizeof(init.features) / sizeof(init.features[0]);
  Napi::Array features = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) features.Set(i, Napi::Number::New(env, init.features[i]));
  o.Set("features", features);
  return o;
}

void InitArch(Napi::Env env, Napi::Object exports) {
  exports.Set("arch", Napi::String::New(env, "arm64"));
  exports.Set("armPreferredTarget", Napi::Function::New(env, ArmPreferredTarget, "armPreferredTarget"));
}

}  // namespace kvmn
