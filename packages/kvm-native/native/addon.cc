// Entry point of the addon: one init per concern; InitArch adds the host architecture's half.
#include "common.h"

namespace kvmn {
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitErrors(env, exports);
  InitKvm(env, exports);
  InitVm(env, exports);
  InitDevice(env, exports);
  InitVcpu(env, exports);
  InitUserfault(env, exports);
  InitArch(env, exports);
  return exports;
}
}  // namespace kvmn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return kvmn::Init(env, exports); }

NODE_API_MODULE(kvm_native, InitAddon)
