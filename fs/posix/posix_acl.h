// POSIX ACLs in their xattr form (system.posix_acl_access / _default): a
// little-endian header {u32 version = 2} then entries {u16 tag, u16 perm,
// u32 id}. Decoding validates the way Linux's posix_acl_valid does, plus
// strictly ascending ids for named users and groups; the mode arithmetic
// follows Linux (posix_acl_equiv_mode, posix_acl_chmod, posix_acl_create).
// Pure functions; any thread; never block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace reclaimfs::fs {

inline constexpr std::string_view kAclAccessXattr = "system.posix_acl_access";
inline constexpr std::string_view kAclDefaultXattr = "system.posix_acl_default";

struct AclEntry {
  uint16_t tag = 0;   // ACL_USER_OBJ ... ACL_OTHER (linux/posix_acl.h)
  uint16_t perm = 0;  // ACL_READ | ACL_WRITE | ACL_EXECUTE
  uint32_t id = 0;    // uid or gid for ACL_USER / ACL_GROUP, else undefined
  bool operator==(const AclEntry&) const = default;
};

// An ACL's entries in canonical order (empty = no ACL).
using Acl = std::vector<AclEntry>;

bool IsAclXattr(std::string_view name);

// Parses and validates an xattr value. An empty value or a header without
// entries is the empty ACL (removal). EINVAL when malformed: bad size or
// version, unknown tag, perm bits beyond rwx, entries out of order, a
// missing or repeated USER_OBJ / GROUP_OBJ / OTHER, a missing MASK when
// named entries exist, or repeated named ids.
absl::StatusOr<Acl> DecodeAcl(std::string_view value);
// The xattr value of a valid ACL (ids of the *_OBJ, MASK and OTHER entries
// written as ACL_UNDEFINED_ID).
std::string EncodeAcl(const Acl& acl);

// The minimal ACL the permission bits of `mode` describe.
Acl AclFromMode(uint32_t mode);

// Setting an access ACL: `mode` with its rwx bits replaced by the ACL's
// (owner from USER_OBJ, group from MASK if present else GROUP_OBJ, other
// from OTHER). Sets *equivalent when the ACL says no more than those bits
// (no MASK, no named entries), in which case it need not be stored.
uint32_t ModeFromAcl(const Acl& acl, uint32_t mode, bool* equivalent);

// chmod of a file with an access ACL: USER_OBJ, MASK (GROUP_OBJ without a
// mask) and OTHER take the new permission bits.
void ChmodAcl(Acl* acl, uint32_t mode);

// Creating a node under a directory whose default ACL is `parent_default`
// with requested `mode` (type and permission bits, umask not applied):
// the new node's access ACL is the default masked by the mode, and the mode
// is narrowed to what the ACL allows. Returns the mode; *access is left
// empty when the result is equivalent to the mode bits.
uint32_t InheritAcl(const Acl& parent_default, uint32_t mode, Acl* access);

}  // namespace reclaimfs::fs
