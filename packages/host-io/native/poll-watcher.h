// The uv_poll watcher behind EventFdPoll (eventfd.cc) and ReadablePoll (fd-poll.cc): a JS object that
// watches one fd for readability on the main loop and calls a JS callback. Derived classes (CRTP, since
// ObjectWrap is templated on the final class) supply `void OnReady()`, which decides what to hand the
// callback (via CallBack) and may close the watcher from inside the callback.
//
// Lifetime rules:
//  - the uv handle lives in a PollBox freed by libuv's close callback, never while one of our callbacks runs;
//  - the JS object is Ref'd while the poll is open and Unref'd only in that close callback (outside any
//    callback of ours), so the GC cannot finalize it under a running callback;
//  - an async env cleanup hook closes the handle when the environment (a worker, say) goes away, and then the
//    owner is never touched again; the hook is released only in libuv's close callback, so the environment (and
//    with it this addon's code, when no other thread loaded it) stays until that callback has run.
#pragma once
#include "common.h"
#include <initializer_list>
#include <uv.h>

namespace hostio {

template <typename Derived>
class PollWatcher : public Napi::ObjectWrap<Derived> {
 public:
  ~PollWatcher() override { delete context_; }

 protected:
  // new Derived(fd, callback): starts polling at once. `resource` names the async context.
  PollWatcher(const Napi::CallbackInfo& info, const char* resource) : Napi::ObjectWrap<Derived>(info) {
    Napi::Env env = info.Env();
    if (!ArgI32(info, 0, &fd_)) return;
    if (!info[1].IsFunction()) { ThrowType(env, "callback must be a function"); return; }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, resource);
    uv_loop_t* loop;
    napi_get_uv_event_loop(env, &loop);
    box_ = new PollBox{{}, this};
    int r = uv_poll_init(loop, &box_->handle, fd_);
    if (r != 0) {
      delete box_;
      box_ = nullptr;
      ThrowSysError(env, "uv_poll_init", -r);
      return;
    }
    box_->handle.data = box_;
    r = uv_poll_start(&box_->handle, UV_READABLE, OnReadable);
    if (r != 0) {
      box_->owner = nullptr;  // not Ref'd yet: nothing to release
      uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
      box_ = nullptr;
      ThrowSysError(env, "uv_poll_start", -r);
      return;
    }
    this->Ref();  // the JS object stays alive while the poll is open; released once libuv has closed the handle
    napi_add_async_cleanup_hook(env, CleanupHook, this, &cleanupHook_);
  }

  // Calls the JS callback with `args` in the watcher's async context (inside a handle scope of the caller). An
  // exception it throws is rethrown, so Node reports it as uncaught. The raw call, not FunctionReference's: that one
  // aborts the process when a worker is terminated during the callback (nothing can be thrown then; nothing is).
  void CallBack(std::initializer_list<napi_value> args) {
    napi_env env = this->Env();
    napi_value result;
    if (napi_make_callback(env, *context_, this->Env().Global(), callback_.Value(), args.size(), args.begin(), &result) !=
        napi_pending_exception)
      return;
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_throw(env, error);
  }

  int32_t fd() const { return fd_; }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (box_) {
      napi_remove_async_cleanup_hook(cleanupHook_);
      cleanupHook_ = nullptr;
      Stop();
      callback_.Reset();
    }
    return info.Env().Undefined();
  }

  // Stops polling without closing (the kernel keeps queueing); Resume restarts it.
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (box_) uv_poll_stop(&box_->handle);
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    if (box_) {
      int r = uv_poll_start(&box_->handle, UV_READABLE, OnReadable);
      if (r != 0) ThrowSysError(info.Env(), "uv_poll_start", -r);
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

 private:
  // The handle and a back pointer, freed by libuv's close callback (never while a callback runs).
  struct PollBox {
    uv_poll_t handle;
    PollWatcher* owner;  // null once the owner must not be touched (env teardown)
    napi_async_cleanup_hook_handle teardown = nullptr;  // env teardown waits for this close (see CleanupHook)
  };

  // status < 0 (an error on the fd) still reaches OnReady, so a reader sees the error from read().
  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* box = static_cast<PollBox*>(h->data);
    PollWatcher* self = box->owner;
    if (!self) return;
    static_cast<Derived*>(self)->OnReady();
  }

  // Unref (which may let the GC finalize this object) only here, outside any callback of ours.
  static void OnClosed(uv_handle_t* h) {
    auto* box = static_cast<PollBox*>(h->data);
    if (box->owner) box->owner->Unref();
    if (box->teardown) napi_remove_async_cleanup_hook(box->teardown);
    delete box;
  }

  // The environment (a worker, say) is going away: close the handle so its loop can close. Node keeps running the
  // loop until OnClosed releases `hook`; a synchronous hook would let the addon be unloaded before libuv calls
  // OnClosed (a crash when only that worker had loaded it).
  static void CleanupHook(napi_async_cleanup_hook_handle hook, void* arg) {
    auto* self = static_cast<PollWatcher*>(arg);
    self->cleanupHook_ = nullptr;
    if (!self->box_) { napi_remove_async_cleanup_hook(hook); return; }
    self->box_->owner = nullptr;
    self->box_->teardown = hook;
    self->Stop();
  }

  void Stop() {
    uv_poll_stop(&box_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
    box_ = nullptr;
  }

  int32_t fd_ = -1;
  PollBox* box_ = nullptr;
  napi_async_cleanup_hook_handle cleanupHook_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

}  // namespace hostio
