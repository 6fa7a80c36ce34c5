// x86's variable-length ioctl arguments (see kvm-abi.h for why the binding declares its own headers).
#pragma once
#include "kvm-abi.h"

namespace kvmn {

struct CpuidHeader { uint32_t nent; uint32_t padding; };
struct MsrsHeader { uint32_t nmsrs; uint32_t pad; };
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8, "C layout");

constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

}  // namespace kvmn
