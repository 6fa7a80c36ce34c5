// The vCPU handle both architectures share: the fd and its run page, closing, MP state. Registers and other
// state are the architecture's (x86-vcpu.cc, arm64-vcpu.cc); KVM_RUN is run-loop.cc's.
#include "vcpu.h"
#include "watcher.h"
#include <cerrno>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace kvmn {

Napi::Function VcpuHandle::Define(Napi::Env env) {
  std::vector<Method> methods = {
      InstanceMethod("run", &VcpuHandle::Run),           InstanceMethod("requestStop", &VcpuHandle::RequestStop),
      InstanceMethod("kick", &VcpuHandle::KickJs),       InstanceMethod("close", &VcpuHandle::Close),
      InstanceMethod("getMpState", &VcpuHandle::GetMpState), InstanceMethod("setMpState", &VcpuHandle::SetMpState),
      InstanceMethod("startThread", &VcpuHandle::StartThread), InstanceMethod("stopThread", &VcpuHandle::StopThread),
      InstanceMethod("statsFd", &VcpuHandle::StatsFd)};
  AddArchMethods(&methods);
  return DefineClass(env, "VcpuHandle", methods);
}

VcpuHandle::VcpuHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VcpuHandle>(info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t size, id;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &size) || !ArgU32(info, 2, &id)) return;
  if (size < sizeof(kvm_run)) { ThrowRange(env, "vcpu mmap size too small"); return; }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { ThrowKvmError(env, "mmap", errno); return; }
  fd_ = fd;
  id_ = id;
  mmapSize_ = size;
  run_ = static_cast<kvm_run*>(p);
}

VcpuHandle::~VcpuHandle() {
  AbandonThread();
  watcher_.reset();
  if (run_) munmap(run_, mmapSize_);
  if (fd_ >= 0) close(fd_);
}

bool VcpuHandle::CheckOpen(Napi::Env env) {
  if (fd_ < 0) { ThrowKvmError(env, "vcpu (closed)", EBADF); return false; }
  return true;
}

Napi::Value VcpuHandle::Close(const Napi::CallbackInfo& info) {
  AbandonThread();
  if (running_.load()) { Napi::Error::New(info.Env(), "cannot close a running vCPU").ThrowAsJavaScriptException(); return info.Env().Undefined(); }
  watcher_.reset();
  if (run_) munmap(run_, mmapSize_);
  run_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

Napi::Value VcpuHandle::GetMpState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  kvm_mp_state s{};
  if (!IoctlOrThrow(env, fd_, KVM_GET_MP_STATE, &s, "KVM_GET_MP_STATE")) return env.Undefined();
  return Napi::Number::New(env, s.mp_state);
}

Napi::Value VcpuHandle::SetMpState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_mp_state s{};
  if (!ArgU32(info, 0, &s.mp_state) || !CheckOpen(env)) return env.Undefined();
  IoctlOrThrow(env, fd_, KVM_SET_MP_STATE, &s, "KVM_SET_MP_STATE");
  return env.Undefined();
}

// KVM_GET_STATS_FD: a new fd (close-on-exec) of the vCPU's binary statistics; the caller owns and closes it.
Napi::Value VcpuHandle::StatsFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int r = ioctl(fd_, KVM_GET_STATS_FD, nullptr);
  if (r < 0) { ThrowKvmError(env, "KVM_GET_STATS_FD", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

void InitVcpu(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = VcpuHandle::Define(env);
  env.GetInstanceData<AddonData>()->vcpuCtor = Napi::Persistent(ctor);
  exports.Set("VcpuHandle", ctor);
}

}  // namespace kvmn
