// x86's port-I/O exits: the ACPI PM timer answered here, everything else one dispatch.pio call per element
// (a `rep ins/outs` exit carries several).
#include "exit-values.h"
#include "vcpu.h"

namespace kvmn {

bool VcpuHandle::PmTimerRead() {
  const uint32_t size = run_->io.size, port = run_->io.port;
  const uint64_t off = run_->io.data_offset;
  if (run_->io.direction != KVM_EXIT_IO_IN || run_->io.count != 1 || pmTimerPort_ == 0 || port < pmTimerPort_ ||
      port + size > pmTimerPort_ + 4 || (size != 1 && size != 2 && size != 4) || off + size > mmapSize_)
    return false;
  const uint64_t elapsed = static_cast<uint64_t>(MonotonicNs() - pmTimerStartNs_);
  // 3,579,545 Hz: ticks = ns * 3579545 / 1e9, split so the product cannot overflow 64 bits.
  const uint64_t ticks = (elapsed / 1000000000ULL) * 3579545ULL + (elapsed % 1000000000ULL) * 3579545ULL / 1000000000ULL;
  StoreLe(reinterpret_cast<uint8_t*>(run_) + off, size, (ticks & 0xffffffULL) >> (8 * (port - pmTimerPort_)));
  return true;
}

bool VcpuHandle::PortIoExit(napi_env e, napi_value recv, napi_value pio, bool* failed) {
  const uint32_t size = run_->io.size, count = run_->io.count;
  const uint64_t off = run_->io.data_offset;
  const bool isWrite = run_->io.direction == KVM_EXIT_IO_OUT;
  if ((size != 1 && size != 2 && size != 4) || off + static_cast<uint64_t>(size) * count > mmapSize_) return false;
  if (PmTimerRead()) return true;
  uint8_t* data = reinterpret_cast<uint8_t*>(run_) + off;
  const uint32_t port = run_->io.port;
  napi_value argv[4];
  napi_create_uint32(e, port, &argv[0]);
  napi_create_uint32(e, size, &argv[1]);
  napi_get_boolean(e, isWrite, &argv[2]);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* elem = data + i * size;
    napi_create_uint32(e, isWrite ? static_cast<uint32_t>(LoadLe(elem, size)) : 0, &argv[3]);
    napi_value result;
    if (napi_call_function(e, recv, pio, 4, argv, &result) != napi_ok) { *failed = true; return true; }
    if (!isWrite) {
      uint64_t v;
      if (!ReadResult(e, result, &v)) {
        ThrowType(Napi::Env(e), "dispatch.pio must return a number for port reads");
        *failed = true;
        return true;
      }
      StoreLe(elem, size, v);
    }
  }
  return true;
}

}  // namespace kvmn
