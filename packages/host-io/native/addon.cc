// Entry point of the host I/O addon: one init per concern.
#include "common.h"

namespace hostio {
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitErrors(env, exports);
  InitEventFd(env, exports);
  InitFdPoll(env, exports);
  InitTap(env, exports);
  InitFile(env, exports);
  InitMemfd(env, exports);
  InitUnixSocket(env, exports);
  InitMapping(env, exports);
  InitIoctl(env, exports);
  return exports;
}
}  // namespace hostio

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return hostio::Init(env, exports); }

NODE_API_MODULE(host_io, InitAddon)
