// NIC model files: parsing, the file the testbed writes, and errors with file:line.
#include <gtest/gtest.h>

#include "proxy/config.hpp"
#include "proxy/model.hpp"

namespace shunt::proxy {
namespace {

TEST(Model, RoundRobinDefaultsQueueToCpu) {
    const auto m = parse_model("queues = 4\nreta_size = 64\n", "m.toml");
    EXPECT_EQ(m.nic.reta.size(), 64u);
    EXPECT_EQ(m.nic.reta.queue_count(), 4u);
    EXPECT_EQ(m.queue_cpu, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(m.nic.key, rss::ToeplitzKey::microsoft());
    EXPECT_EQ(m.queues_of_cpu(2), (std::vector<uint32_t>{2}));
}

TEST(Model, FormatRoundTrips) {
    RssModel m;
    m.nic.key = rss::ToeplitzKey::symmetric();
    m.nic.reta = rss::Reta::from_entries({1, 0, 1, 1, 0, 1, 1, 1});
    m.queue_cpu = {1, 0};
    const auto back = parse_model(format_model(m), "x");
    EXPECT_EQ(back.nic.key, m.nic.key);
    EXPECT_EQ(std::vector<uint32_t>(back.nic.reta.entries().begin(), back.nic.reta.entries().end()),
              std::vector<uint32_t>(m.nic.reta.entries().begin(), m.nic.reta.entries().end()));
    EXPECT_EQ(back.queue_cpu, m.queue_cpu);
    EXPECT_EQ(back.queues_of_cpu(0), (std::vector<uint32_t>{1}));
    EXPECT_EQ(back.queues_of_cpu(1), (std::vector<uint32_t>{0}));
    EXPECT_TRUE(back.queues_of_cpu(7).empty());
}

std::string error_of(const std::string& text) {
    try {
        parse_model(text, "m.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

TEST(Model, ErrorsNameTheLine) {
    EXPECT_EQ(error_of("queues = 2\nkey = \"abc\"\n").rfind("m.toml:2:", 0), 0u);
    EXPECT_EQ(error_of("queues = 2\n\nreta = [0, -1]\n").rfind("m.toml:3:", 0), 0u);
    EXPECT_EQ(error_of("queues = 2\nretta = 1\n").rfind("m.toml:2:", 0), 0u);
    EXPECT_NE(error_of("reta = [0, 1, 0]\n").find("RETA"), std::string::npos);  // not a power of 2
    EXPECT_NE(error_of("key = \"00\"\n").find("m.toml:1:"), std::string::npos);
}

}  // namespace
}  // namespace shunt::proxy
