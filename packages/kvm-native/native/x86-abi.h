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

struct MsrListHeader { uint32_t nmsrs; };
static_assert(sizeof(MsrListHeader) == 4, "C layout");
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);

// struct kvm_xsave ends in a flexible array (the bytes past 4096 that KVM_GET_XSAVE2 writes), so C++ sizes it
// wrongly; the ioctl numbers encode its C size, 4096.
struct XsaveArea { uint32_t region[1024]; };
static_assert(sizeof(XsaveArea) == 4096, "C layout");
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveArea);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveArea);
constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveArea);

}  // namespace kvmn
