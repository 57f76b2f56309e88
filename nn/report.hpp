#pragma once
// Reporting for training scripts: a progress bar on a terminal stream, and the learning curve
// as CSV and as an SVG plot a person can open in a browser.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace tapegrad::nn {

// Training progress, in one of two styles:
// - Terminal: "epoch 3/15 [#########.........] 412/938 loss 0.3127 1830 img/s", redrawn in place
//   with '\r' at most ten times a second;
// - Log (a file, a pipe, CI): "epoch 3/15 412/938 (44%) loss 0.3127 1830 img/s", one plain line
//   every `log_every` and one at the end, so that a log holds neither '\r' nor escape codes.
// Auto picks Terminal when the stream is std::cout, std::cerr or std::clog and that descriptor is
// a terminal (isatty), Log otherwise.
class ProgressBar {
public:
    enum class Style { Auto, Terminal, Log };
    ProgressBar(std::string label, int64_t total, std::ostream& os, Style style = Style::Auto,
                std::chrono::milliseconds log_every = std::chrono::seconds(10));
    // Draws at most once per interval (a tenth of a second, or log_every), and always for the last
    // step.
    void update(int64_t done, const std::string& status);
    // Draws the final state and ends the line.
    void finish(const std::string& status);
    bool redraws_in_place() const { return terminal_; }

private:
    void draw(int64_t done, const std::string& status);
    std::string label_;
    int64_t total_;
    std::ostream& os_;
    bool terminal_;
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point last_draw_;
    int64_t last_drawn_ = -1;
};

// Whether `os` writes to a terminal: std::cout, std::cerr or std::clog on a tty. Any other stream
// (a file, a string stream) is not one.
bool is_terminal(const std::ostream& os);

struct EpochRecord {
    int64_t epoch = 0;
    double train_loss = 0;
    double test_accuracy = 0;
    double seconds = 0;
};

// The files below are written all or nothing (a temporary file renamed over `path`); errors are
// std::runtime_error starting with the function's name and naming the path.

// "epoch,train_loss,test_accuracy,seconds" then one row per epoch, each value in the shortest form
// that reads back exactly; values that are not finite as "inf", "-inf" and "nan" (as pandas
// writes them).
void write_curve_csv(const std::string& path, const std::vector<EpochRecord>& records);
// Reads what write_curve_csv wrote (to continue a curve on resume), the same values bit for bit;
// also "infinity" and any letter case. A malformed file throws, naming the line.
std::vector<EpochRecord> read_curve_csv(const std::string& path);
// Training loss (left axis) and test accuracy (right axis) against epochs. A value that is not
// finite (or beyond 1e300) is left out, leaving a gap in its curve; the title may hold any text.
void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& records, const std::string& title);

}  // namespace tapegrad::nn
