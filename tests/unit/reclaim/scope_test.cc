// Tests of thread-local reclaim scopes.
#include "reclaim/scope.h"

#include <thread>

#include "gtest/gtest.h"

namespace reclaimfs::reclaim {
namespace {

TEST(ScopeTest, NestedScopesAddAndRestore) {
  EXPECT_EQ(CurrentScope(), kScopeNone);
  {
    ScopedReclaimFlags nofs(kScopeNoFs);
    EXPECT_EQ(CurrentScope(), kScopeNoFs);
    {
      ScopedReclaimFlags reserve(kScopeMayUseReserve | kScopeNoIo);
      EXPECT_EQ(CurrentScope(), kScopeNoFs | kScopeMayUseReserve | kScopeNoIo);
      {
        // Re-asserting a flag already set changes nothing on exit.
        ScopedReclaimFlags again(kScopeNoFs);
        EXPECT_EQ(CurrentScope(), kScopeNoFs | kScopeMayUseReserve | kScopeNoIo);
      }
      EXPECT_EQ(CurrentScope(), kScopeNoFs | kScopeMayUseReserve | kScopeNoIo);
    }
    EXPECT_EQ(CurrentScope(), kScopeNoFs);
  }
  EXPECT_EQ(CurrentScope(), kScopeNone);
}

TEST(ScopeTest, FlagsAreThreadLocal) {
  ScopedReclaimFlags in(kScopeInReclaim);
  uint32_t other = 0xffffffff;
  std::thread t([&] { other = CurrentScope(); });
  t.join();
  EXPECT_EQ(other, kScopeNone);
  EXPECT_EQ(CurrentScope(), kScopeInReclaim);
}

}  // namespace
}  // namespace reclaimfs::reclaim
