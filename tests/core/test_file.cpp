#include <filesystem>
#include <fstream>

#include "core/file.hpp"
#include "test_util.hpp"

namespace wkv {

TEST(File, AtomicWriteReplacesOnlyOnSuccess) {
  std::string p = test::temp_dir() + "/atomic.txt";
  ASSERT_TRUE(write_file_atomic(p, [](const ByteSink& s) { return s("old", 3); }).ok());
  Status bad = write_file_atomic(p, [](const ByteSink& s) { return s("new", 3) && false; });
  EXPECT_FALSE(bad.ok());
  auto txt = read_text_file(p, 100);
  ASSERT_TRUE(txt.ok());
  EXPECT_EQ(*txt, "old");
}

TEST(File, MapMissingFileNamesPath) {
  auto m = MappedFile::open("/nonexistent/dir/x.bin");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent/dir/x.bin"), std::string::npos);
}

}  // namespace wkv
