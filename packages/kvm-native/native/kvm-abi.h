// Variable-length ioctl arguments in their C layout. In C++, the uapi headers' __DECLARE_FLEX_ARRAY
// wrapper contains an empty struct that takes a byte, which moves `entries` and changes the size
// encoded in KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2, KVM_GET/SET_MSRS and KVM_SET_GSI_ROUTING.
#pragma once
#include <cstdint>
#include <linux/kvm.h>
#include <vector>

namespace kvmn {

struct CpuidHeader { uint32_t nent; uint32_t padding; };
struct MsrsHeader { uint32_t nmsrs; uint32_t pad; };
struct RoutingHeader { uint32_t nr; uint32_t flags; };
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(RoutingHeader) == 8, "C layout");

constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);

// A header followed directly by `n` entries, zero-filled.
template <class Header, class Entry>
class VarArg {
 public:
  explicit VarArg(size_t n) : words_((sizeof(Header) + n * sizeof(Entry) + 7) / 8, 0) {}
  Header* header() { return reinterpret_cast<Header*>(words_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(words_.data()) + sizeof(Header)); }
  void* arg() { return words_.data(); }

 private:
  std::vector<uint64_t> words_;  // 8-byte aligned storage
};

}  // namespace kvmn
