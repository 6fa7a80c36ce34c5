// A readiness watcher for any non-blocking fd (a tap, say): a uv_poll on the main loop that calls a JS
// callback while the fd is readable, without reading it, so the caller reads as much as it wants. pause()
// stops polling (the kernel keeps queueing) and resume() restarts it; that is how consumers apply
// back-pressure. Lifetime rules are those of EventFdPoll (eventfd.cc): the handle is freed by libuv's close
// callback, and an env cleanup hook closes it when a worker goes away.
#include "common.h"
#include <uv.h>

namespace kvmn {

class ReadablePoll : public Napi::ObjectWrap<ReadablePoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReadablePoll",
                       {InstanceMethod("close", &ReadablePoll::Close), InstanceMethod("pause", &ReadablePoll::Pause),
                        InstanceMethod("resume", &ReadablePoll::Resume), InstanceMethod("ref", &ReadablePoll::RefJs),
                        InstanceMethod("unref", &ReadablePoll::UnrefJs)});
  }

  // new ReadablePoll(fd, callback()): starts polling at once.
  explicit ReadablePoll(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReadablePoll>(info) {
    Napi::Env env = info.Env();
    int32_t fd;
    if (!ArgI32(info, 0, &fd)) return;
    if (!info[1].IsFunction()) { ThrowType(env, "callback must be a function"); return; }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "ReadablePoll");
    uv_loop_t* loop;
    napi_get_uv_event_loop(env, &loop);
    box_ = new PollBox{{}, this};
    int r = uv_poll_init(loop, &box_->handle, fd);
    if (r != 0) {
      delete box_;
      box_ = nullptr;
      ThrowKvmError(env, "uv_poll_init", -r);
      return;
    }
    box_->handle.data = box_;
    r = uv_poll_start(&box_->handle, UV_READABLE, OnReadable);
    if (r != 0) {
      box_->owner = nullptr;  // not Ref'd yet: nothing to release
      uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
      box_ = nullptr;
      ThrowKvmError(env, "uv_poll_start", -r);
      return;
    }
    Ref();  // alive while the poll is open; released once libuv has closed the handle
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  ~ReadablePoll() override { delete context_; }

 private:
  struct PollBox {
    uv_poll_t handle;
    ReadablePoll* owner;  // null once the owner must not be touched (env teardown)
  };

  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* box = static_cast<PollBox*>(h->data);
    ReadablePoll* self = box->owner;
    if (!self) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // status < 0 (an error on the fd): still call back, so the reader sees the error from read().
    self->callback_.MakeCallback(env.Global(), {}, *self->context_);
  }

  static void OnClosed(uv_handle_t* h) {
    auto* box = static_cast<PollBox*>(h->data);
    if (box->owner) box->owner->Unref();
    delete box;
  }

  static void CleanupHook(void* arg) {
    auto* self = static_cast<ReadablePoll*>(arg);
    if (!self->box_) return;
    self->box_->owner = nullptr;
    self->Stop();
  }

  void Stop() {
    uv_poll_stop(&box_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
    box_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (box_) {
      napi_remove_env_cleanup_hook(info.Env(), CleanupHook, this);
      Stop();
      callback_.Reset();
    }
    return info.Env().Undefined();
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (box_) uv_poll_stop(&box_->handle);
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    if (box_) {
      int r = uv_poll_start(&box_->handle, UV_READABLE, OnReadable);
      if (r != 0) ThrowKvmError(info.Env(), "uv_poll_start", -r);
    }
    return info.Env().Undefined();
  }

  Napi::Value RefJs(const Napi::CallbackInfo& info) {
    if (box_) uv_ref(reinterpret_cast<uv_handle_t*>(&box_->handle));
    return info.Env().Undefined();
  }

  Napi::Value UnrefJs(const Napi::CallbackInfo& info) {
    if (box_) uv_unref(reinterpret_cast<uv_handle_t*>(&box_->handle));
    return info.Env().Undefined();
  }

  PollBox* box_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

void InitFdPoll(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ReadablePoll::Define(env);
  env.GetInstanceData<AddonData>()->readablePollCtor = Napi::Persistent(ctor);
  exports.Set("ReadablePoll", ctor);
}

}  // namespace kvmn
