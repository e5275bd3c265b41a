// POSIX ACL xattr form, validation and mode arithmetic.
#include "fs/posix/posix_acl.h"

#include <linux/posix_acl.h>
#include <sys/stat.h>

#include <cerrno>

#include "fs/cache/errno_status.h"

namespace reclaimfs::fs {
namespace {

constexpr uint32_t kAclVersion = 2;
constexpr size_t kHeaderSize = 4;
constexpr size_t kEntrySize = 8;
constexpr uint32_t kUndefinedId = 0xffffffffu;
constexpr uint16_t kPermBits = ACL_READ | ACL_WRITE | ACL_EXECUTE;

// The xattr form is little-endian whatever the host.
uint32_t LoadLe(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void StoreLe(char* p, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

bool HasId(uint16_t tag) { return tag == ACL_USER || tag == ACL_GROUP; }

absl::Status Invalid(std::string_view why) { return ErrnoStatus(EINVAL, why); }

// The tag order of a valid ACL; named entries of one kind ascend by id.
absl::Status Validate(const Acl& acl) {
  enum { kWantUserObj, kUsers, kGroups, kWantOther, kDone } state = kWantUserObj;
  bool named = false;
  const AclEntry* prev = nullptr;
  for (const AclEntry& e : acl) {
    if ((e.perm & ~kPermBits) != 0) return Invalid("ACL perm beyond rwx");
    switch (e.tag) {
      case ACL_USER_OBJ:
        if (state != kWantUserObj) return Invalid("ACL USER_OBJ misplaced");
        state = kUsers;
        break;
      case ACL_USER:
        if (state != kUsers) return Invalid("ACL USER misplaced");
        if (prev->tag == ACL_USER && prev->id >= e.id) return Invalid("ACL USER ids not ascending");
        named = true;
        break;
      case ACL_GROUP_OBJ:
        if (state != kUsers) return Invalid("ACL GROUP_OBJ misplaced");
        state = kGroups;
        break;
      case ACL_GROUP:
        if (state != kGroups) return Invalid("ACL GROUP misplaced");
        if (prev->tag == ACL_GROUP && prev->id >= e.id) return Invalid("ACL GROUP ids not ascending");
        named = true;
        break;
      case ACL_MASK:
        if (state != kGroups) return Invalid("ACL MASK misplaced");
        state = kWantOther;
        break;
      case ACL_OTHER:
        if (state == kGroups && named) return Invalid("ACL with named entries needs a MASK");
        if (state != kGroups && state != kWantOther) return Invalid("ACL OTHER misplaced");
        state = kDone;
        break;
      default:
        return Invalid("unknown ACL tag");
    }
    prev = &e;
  }
  if (state != kDone) return Invalid("ACL incomplete");
  return absl::OkStatus();
}

AclEntry* Find(Acl* acl, uint16_t tag) {
  for (AclEntry& e : *acl) {
    if (e.tag == tag) return &e;
  }
  return nullptr;
}

}  // namespace

bool IsAclXattr(std::string_view name) { return name == kAclAccessXattr || name == kAclDefaultXattr; }

absl::StatusOr<Acl> DecodeAcl(std::string_view value) {
  Acl acl;
  if (value.empty()) return acl;
  if (value.size() < kHeaderSize || (value.size() - kHeaderSize) % kEntrySize != 0) {
    return Invalid("ACL size is not a header plus whole entries");
  }
  if (LoadLe(value.data(), 4) != kAclVersion) return Invalid("ACL version is not 2");
  for (size_t off = kHeaderSize; off < value.size(); off += kEntrySize) {
    AclEntry e;
    e.tag = static_cast<uint16_t>(LoadLe(value.data() + off, 2));
    e.perm = static_cast<uint16_t>(LoadLe(value.data() + off + 2, 2));
    e.id = HasId(e.tag) ? LoadLe(value.data() + off + 4, 4) : kUndefinedId;
    acl.push_back(e);
  }
  if (acl.empty()) return acl;
  if (absl::Status s = Validate(acl); !s.ok()) return s;
  return acl;
}

std::string EncodeAcl(const Acl& acl) {
  std::string out(kHeaderSize + acl.size() * kEntrySize, '\0');
  StoreLe(out.data(), kAclVersion, 4);
  size_t off = kHeaderSize;
  for (const AclEntry& e : acl) {
    StoreLe(out.data() + off, e.tag, 2);
    StoreLe(out.data() + off + 2, e.perm, 2);
    StoreLe(out.data() + off + 4, HasId(e.tag) ? e.id : kUndefinedId, 4);
    off += kEntrySize;
  }
  return out;
}

Acl AclFromMode(uint32_t mode) {
  return {{ACL_USER_OBJ, static_cast<uint16_t>((mode >> 6) & 7), kUndefinedId},
          {ACL_GROUP_OBJ, static_cast<uint16_t>((mode >> 3) & 7), kUndefinedId},
          {ACL_OTHER, static_cast<uint16_t>(mode & 7), kUndefinedId}};
}

uint32_t ModeFromAcl(const Acl& acl, uint32_t mode, bool* equivalent) {
  uint32_t user = 0, group = 0, other = 0, mask = 0;
  bool has_mask = false;
  bool equiv = true;
  for (const AclEntry& e : acl) {
    switch (e.tag) {
      case ACL_USER_OBJ: user = e.perm; break;
      case ACL_GROUP_OBJ: group = e.perm; break;
      case ACL_OTHER: other = e.perm; break;
      case ACL_MASK:
        mask = e.perm;
        has_mask = true;
        equiv = false;
        break;
      default: equiv = false; break;
    }
  }
  if (equivalent != nullptr) *equivalent = equiv;
  const uint32_t g = has_mask ? mask : group;
  return (mode & ~0777u) | (user << 6) | (g << 3) | other;
}

void ChmodAcl(Acl* acl, uint32_t mode) {
  AclEntry* group = Find(acl, ACL_MASK);
  if (group == nullptr) group = Find(acl, ACL_GROUP_OBJ);
  if (AclEntry* u = Find(acl, ACL_USER_OBJ)) u->perm = (mode >> 6) & 7;
  if (group != nullptr) group->perm = (mode >> 3) & 7;
  if (AclEntry* o = Find(acl, ACL_OTHER)) o->perm = mode & 7;
}

uint32_t InheritAcl(const Acl& parent_default, uint32_t mode, Acl* access) {
  Acl acl = parent_default;
  uint32_t m = mode & 0777;
  bool equiv = true;
  AclEntry* group_obj = nullptr;
  AclEntry* mask = nullptr;
  for (AclEntry& e : acl) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        e.perm &= (m >> 6) & 7;
        m = (m & ~0700u) | (static_cast<uint32_t>(e.perm) << 6);
        break;
      case ACL_GROUP_OBJ: group_obj = &e; break;
      case ACL_OTHER:
        e.perm &= m & 7;
        m = (m & ~07u) | e.perm;
        break;
      case ACL_MASK:
        mask = &e;
        equiv = false;
        break;
      default: equiv = false; break;
    }
  }
  // The group class is the mask when there is one, GROUP_OBJ otherwise.
  if (AclEntry* g = mask != nullptr ? mask : group_obj) {
    g->perm &= (m >> 3) & 7;
    m = (m & ~070u) | (static_cast<uint32_t>(g->perm) << 3);
  }
  if (equiv) {
    access->clear();
  } else {
    *access = std::move(acl);
  }
  return (mode & ~0777u) | m;
}

}  // namespace reclaimfs::fs
