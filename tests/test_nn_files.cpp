// nn's files from the outside: every reader names itself and the path when the path is a
// directory or missing; every writer is all or nothing (a failure leaves the target as it was and
// no temporary file behind) and refuses what its reader would refuse; what a writer accepts reads
// back exactly (the learning-curve CSV with non-finite values included); the SVG plot stays valid
// whatever the values and the title.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "nn/data.hpp"
#include "nn/optim.hpp"
#include "nn/report.hpp"
#include "nn/safetensors.hpp"
#include "nn/serialize.hpp"
#include "tests/error_text.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace fs = std::filesystem;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::count;
using tapegrad::testing::slurp;
using tapegrad::testing::TempDir;

namespace {

struct Linear : nn::Module {
    Tensor w;
    Linear() : Module("Linear") { w = register_parameter("w", tg::full({2, 3}, 0.5)); }
};

// The message of whatever f throws (any std::exception), prefixed with its kind, or "no error".
std::string thrown_by(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return std::string("invalid_argument: ") + e.what();
    } catch (const std::runtime_error& e) {
        return std::string("runtime_error: ") + e.what();
    } catch (const std::exception& e) {
        return std::string("other exception: ") + e.what();
    }
    return "no error";
}

const std::vector<nn::EpochRecord> kCurve = {{1, 0.5, 0.88, 30.5}, {2, 0.25, 0.9, 29}};

}  // namespace

TEST_CASE("every reader refuses a directory or a missing file, naming itself, the path and the reason") {
    TempDir dir("readers");
    const std::string folder = dir / "folder";
    fs::create_directories(folder);
    const std::string missing = dir / "missing";
    Linear model;
    const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> readers = {
        {"nn::load", [](const std::string& p) { nn::load(p); }},
        {"load_checkpoint", [&](const std::string& p) { nn::load_checkpoint(p, model, nullptr); }},
        {"read_idx", [](const std::string& p) { nn::read_idx(p, nn::kIdxImagesMagic); }},
        {"read_curve_csv", [](const std::string& p) { nn::read_curve_csv(p); }},
        {"load_safetensors", [](const std::string& p) { nn::load_safetensors(p); }},
        {"read_safetensors", [](const std::string& p) { nn::read_safetensors(p); }},
        {"load_safetensors_tensor", [](const std::string& p) { nn::load_safetensors_tensor(p, "w"); }},
    };
    for (const auto& [who, read] : readers) {
        CAPTURE(who);
        CHECK(thrown_by([&] { read(folder); }) == "runtime_error: " + who + ": " + folder + " is a directory, not a file");
        CHECK(thrown_by([&] { read(missing); }) ==
              "runtime_error: " + who + ": cannot open " + missing + ": " + std::strerror(ENOENT));
    }
    // load_mnist finds its files by name: a directory under a file's name is refused the same way.
    fs::create_directories(dir.path / "train-images-idx3-ubyte");
    std::ofstream(dir / "train-labels-idx1-ubyte") << "x";
    CHECK(thrown_by([&] { nn::load_mnist(dir.path.string(), nn::Split::Train); }) ==
          "runtime_error: load_mnist: " + (dir / "train-images-idx3-ubyte") + " is a directory, not a file");
    CHECK(thrown_by([&] { nn::load_mnist(dir / "train-labels-idx1-ubyte", nn::Split::Train); })
              .find("load_mnist: dataset directory " + (dir / "train-labels-idx1-ubyte") + " is not a directory") !=
          std::string::npos);
}

TEST_CASE("errors about a file's content name the reader and the path") {
    TempDir dir("content");
    const std::string path = dir / "corrupt";
    std::ofstream(path) << "TAPEGRAD and then nonsense";
    CHECK(contains(thrown_by([&] { nn::load(path); }), "nn::load: checkpoint " + path + ": "));
    Linear model;
    CHECK(contains(thrown_by([&] { nn::load_checkpoint(path, model, nullptr); }), "load_checkpoint: checkpoint " + path + ": "));
    CHECK(contains(thrown_by([&] { nn::read_idx(path, nn::kIdxImagesMagic); }), "read_idx: " + path + ": bad magic"));
    CHECK(contains(thrown_by([&] { nn::read_curve_csv(path); }), "read_curve_csv: " + path + " is not a learning-curve CSV"));
    CHECK(contains(thrown_by([&] { nn::load_safetensors(path); }), "load_safetensors: " + path + ": "));
}

TEST_CASE("every writer refuses a directory as its target and leaves nothing behind") {
    TempDir dir("writers");
    const std::string folder = dir / "out";
    fs::create_directories(folder);
    Linear model;
    nn::SGD sgd(model.parameters(), {.lr = 0.1});
    const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> writers = {
        {"nn::save", [](const std::string& p) { nn::save({{"w", tg::ones({2})}}, p); }},
        {"save_checkpoint", [&](const std::string& p) { nn::save_checkpoint(p, model, &sgd, 1); }},
        {"write_curve_csv", [](const std::string& p) { nn::write_curve_csv(p, kCurve); }},
        {"write_curve_svg", [](const std::string& p) { nn::write_curve_svg(p, kCurve, "curve"); }},
        {"save_safetensors", [](const std::string& p) { nn::save_safetensors(p, "w", tg::ones({2})); }},
    };
    for (const auto& [who, write] : writers) {
        CAPTURE(who);
        CHECK(thrown_by([&] { write(folder); }) == "runtime_error: " + who + ": " + folder + " is a directory; give a file name");
        CHECK(dir.entries() == std::vector<std::string>{"out"});
        CHECK(fs::is_empty(folder));
        // Into a directory that does not exist: the error says where it could not write.
        const std::string nowhere = dir / "no/such/file";
        CHECK(contains(thrown_by([&] { write(nowhere); }), who + ": cannot write " + nowhere + ": "));
        CHECK(dir.entries() == std::vector<std::string>{"out"});
    }
}

TEST_CASE("a write that fails half way leaves the old file and no temporary") {
    TempDir dir("half_way");
    const std::string path = dir / "model.tgck";
    nn::save({{"w", tg::ones({4})}}, path);
    const std::string before = slurp(path);
    // A file size limit makes the write itself fail (EFBIG) after the temporary file is created.
    rlimit old_limit{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    rlimit small = old_limit;
    small.rlim_cur = 4096;
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::string big_save = thrown_by([&] { nn::save({{"w", tg::ones({100000})}}, path); });
    const std::string big_csv = thrown_by([&] {
        nn::write_curve_csv(dir / "curve.csv", std::vector<nn::EpochRecord>(1000, {1, 0.123456789, 0.5, 1.25}));
    });
    const std::string big_safetensors = thrown_by([&] { nn::save_safetensors(path, "w", tg::ones({100000})); });
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    CHECK(contains(big_save, "runtime_error: nn::save: writing " + path + " failed: "));
    CHECK(contains(big_save, std::strerror(EFBIG)));
    CHECK(contains(big_save, path + " is unchanged"));
    CHECK(contains(big_csv, "write_curve_csv: writing " + (dir / "curve.csv") + " failed: "));
    CHECK(contains(big_safetensors, "runtime_error: save_safetensors: writing " + path + " failed: "));
    CHECK(slurp(path) == before);
    CHECK(dir.entries() == std::vector<std::string>{"model.tgck"});
}

TEST_CASE("writers refuse what their readers refuse, before touching the file") {
    TempDir dir("refuse");
    Linear model;
    nn::SGD sgd(model.parameters(), {.lr = 0.1});
    const std::string path = dir / "train.tgck";
    nn::save_checkpoint(path, model, &sgd, 4);
    const std::string before = slurp(path);
    for (const int64_t epoch : {int64_t{-1}, int64_t{1'000'000'000'000}, std::numeric_limits<int64_t>::min()}) {
        CAPTURE(epoch);
        const std::string error = thrown_by([&] { nn::save_checkpoint(path, model, &sgd, epoch); });
        CHECK(contains(error, "invalid_argument: save_checkpoint: epoch " + std::to_string(epoch)));
        CHECK(contains(error, "number of finished epochs"));
    }
    CHECK(slurp(path) == before);
    CHECK(nn::load_checkpoint(path, model, &sgd).epoch == 4);
    // The largest epoch it writes is read back.
    nn::save_checkpoint(path, model, &sgd, 999'999'999'999);
    CHECK(nn::load_checkpoint(path, model, &sgd).epoch == 999'999'999'999);

    // nn::save and serialize: a name given twice.
    const std::string tensors = dir / "tensors.tgck";
    CHECK(contains(thrown_by([&] { nn::save({{"w", tg::ones({2})}, {"w", tg::zeros({2})}}, tensors); }),
                   "invalid_argument: nn::save: the name 'w' appears twice"));
    CHECK(contains(thrown_by([&] { nn::serialize({{"w", tg::ones({2})}, {"w", tg::ones({2})}}); }),
                   "invalid_argument: serialize: the name 'w' appears twice"));
    CHECK_FALSE(fs::exists(tensors));
    // The largest empty shape a tensor can have is written and read back.
    nn::save({{"e", tg::zeros({0, int64_t{1} << 20, int64_t{1} << 20})}}, tensors);
    CHECK(nn::load(tensors).at(0).second.shape() == tg::Shape{0, int64_t{1} << 20, int64_t{1} << 20});
    CHECK(dir.entries() == std::vector<std::string>{"tensors.tgck", "train.tgck"});
}

TEST_CASE("the curve CSV reads back bit for bit, infinities and NaN included") {
    TempDir dir("csv");
    const std::string path = dir / "curve.csv";
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<nn::EpochRecord> curve = {
        {0, 0.1 + 0.2, 1.0 / 3.0, 1e-310},
        {1, inf, -inf, std::numeric_limits<double>::quiet_NaN()},
        {-7, std::numeric_limits<double>::max(), -0.0, 123456789.125},
        {std::numeric_limits<int64_t>::max(), std::numeric_limits<double>::denorm_min(), 0.9, 5e-324}};
    nn::write_curve_csv(path, curve);
    const std::string text = slurp(path);
    CHECK(contains(text, "\n1,inf,-inf,nan\n"));
    const auto back = nn::read_curve_csv(path);
    REQUIRE(back.size() == curve.size());
    auto same_bits = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); };
    for (std::size_t i = 0; i < curve.size(); ++i) {
        CAPTURE(i);
        CHECK(back[i].epoch == curve[i].epoch);
        CHECK(same_bits(back[i].train_loss, curve[i].train_loss));
        CHECK(same_bits(back[i].test_accuracy, curve[i].test_accuracy));
        CHECK(same_bits(back[i].seconds, curve[i].seconds));
    }
    // Other spellings of the same values, and Windows line ends, as pandas and spreadsheets write them.
    std::ofstream(path) << "epoch,train_loss,test_accuracy,seconds\r\n3,Infinity,NaN,-INF\r\n";
    const auto spelled = nn::read_curve_csv(path);
    REQUIRE(spelled.size() == 1);
    CHECK(spelled[0].train_loss == inf);
    CHECK(std::isnan(spelled[0].test_accuracy));
    CHECK(spelled[0].seconds == -inf);
}

TEST_CASE("a curve CSV row with extra fields or trailing text is refused, naming the line") {
    TempDir dir("csv_rows");
    const std::string path = dir / "curve.csv";
    for (const std::string row : {"1,0.5,0.9,30,7", "1,0.5,0.9,30x", "1,0.5,0.9", "1,,0.9,30", "1.5,0.5,0.9,30", " 1,0.5,0.9,30"}) {
        CAPTURE(row);
        std::ofstream(path) << "epoch,train_loss,test_accuracy,seconds\n1,0.5,0.9,30\n" << row << "\n";
        CHECK(thrown_by([&] { nn::read_curve_csv(path); }) ==
              "runtime_error: read_curve_csv: " + path + " line 3: malformed row '" + row +
                  "' (expected epoch,train_loss,test_accuracy,seconds)");
    }
}

TEST_CASE("the SVG plot leaves out values that are not finite and stays valid XML") {
    TempDir dir("svg");
    const std::string path = dir / "curve.svg";
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    // Epoch 3's loss is NaN and epoch 5's accuracy infinite: each curve is drawn in two pieces.
    const std::vector<nn::EpochRecord> curve = {
        {1, 0.9, 0.5, 1}, {2, 0.7, 0.6, 1}, {3, nan, 0.7, 1}, {4, 0.5, 0.75, 1}, {5, 0.4, inf, 1}, {6, 0.3, 0.8, 1}};
    nn::write_curve_svg(path, curve, "run \x01 <7> \xff\xfe");
    const std::string svg = slurp(path);
    CHECK_FALSE(contains(svg, "nan"));
    CHECK_FALSE(contains(svg, "inf"));
    CHECK(count(svg, "<polyline") == 4);
    CHECK(count(svg, "<circle") == 10);
    // XML holds no control character but tab and line breaks, and only valid UTF-8.
    CHECK(contains(svg, "run \xEF\xBF\xBD &lt;7&gt; \xEF\xBF\xBD\xEF\xBF\xBD</text>"));
    for (char c : svg) CHECK((static_cast<unsigned char>(c) >= 0x20 || c == '\n'));
    CHECK(svg.rfind("</svg>\n") == svg.size() - 7);

    // Values at the ends of the double range, and a loss of 1e-12: a handful of ticks, finite coordinates.
    for (const double loss : {1e-12, std::numeric_limits<double>::denorm_min(), 1e300, std::numeric_limits<double>::max()}) {
        CAPTURE(loss);
        nn::write_curve_svg(path, {{1, loss, -1e300, 1}, {2, loss / 2, 1e300, 1}}, "extremes");
        const std::string extreme = slurp(path);
        REQUIRE(count(extreme, "<line") < 30);
        CHECK_FALSE(contains(extreme, "nan"));
        CHECK_FALSE(contains(extreme, "inf"));
    }
    CHECK(dir.entries() == std::vector<std::string>{"curve.svg"});
}
