// What the training example writes: its progress lines on a terminal and in a log, the
// learning-curve CSV round trip and a well-formed SVG.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <fstream>
#include <sstream>

#include "nn/report.hpp"
#include "tests/text_files.hpp"

namespace nn = tapegrad::nn;
using tapegrad::testing::count;
using tapegrad::testing::slurp;

TEST_CASE("progress: a stream that is not a terminal gets plain lines, not carriage returns") {
    std::ostringstream log;
    nn::ProgressBar bar("epoch 1/2", 100, log);  // Style::Auto: a string stream is no terminal
    CHECK_FALSE(bar.redraws_in_place());
    for (int done = 1; done < 100; ++done) bar.update(done, "loss 0.5");
    // 99 quick updates stay well inside the 10 s interval: nothing yet.
    CHECK(log.str().empty());
    bar.update(100, "loss 0.25");
    bar.finish("loss 0.25");
    // The last step is one line, and finish() does not repeat it.
    CHECK(log.str() == "epoch 1/2 100/100 (100%) loss 0.25\n");

    std::ostringstream every;
    nn::ProgressBar chatty("epoch 2/2", 4, every, nn::ProgressBar::Style::Auto, std::chrono::milliseconds(0));
    for (int done = 1; done <= 4; ++done) chatty.update(done, "ok");
    chatty.finish("ok");
    CHECK(every.str() == "epoch 2/2 1/4 (25%) ok\nepoch 2/2 2/4 (50%) ok\nepoch 2/2 3/4 (75%) ok\nepoch 2/2 4/4 (100%) ok\n");
    CHECK(count(every.str(), "\r") == 0);
    CHECK(count(every.str(), "\033") == 0);
}

TEST_CASE("progress: on a terminal the bar redraws in place") {
    std::ostringstream tty;
    nn::ProgressBar bar("epoch 1/1", 10, tty, nn::ProgressBar::Style::Terminal);
    CHECK(bar.redraws_in_place());
    bar.update(5, "loss 1.0");
    bar.finish("loss 0.5");
    const std::string out = tty.str();
    CHECK(count(out, "\r") == 2);  // the first draw and the final one, each from the line's start
    CHECK(out.find("[###############...............] 5/10 loss 1.0") != std::string::npos);
    CHECK(out.substr(out.size() - 1) == "\n");
    // Only std::cout, std::cerr and std::clog can be terminals; other streams never are.
    CHECK_FALSE(nn::is_terminal(tty));
}

TEST_CASE("the curve CSV round-trips and malformed files are refused") {
    const std::vector<nn::EpochRecord> curve = {{1, 0.5, 0.88, 30.5}, {2, 0.3125, 0.9, 29.0}};
    const std::string path = "tapegrad_test_curve.csv";
    nn::write_curve_csv(path, curve);
    const auto back = nn::read_curve_csv(path);
    REQUIRE(back.size() == 2);
    CHECK(back[1].epoch == 2);
    CHECK(back[1].train_loss == doctest::Approx(0.3125));
    CHECK(back[0].test_accuracy == doctest::Approx(0.88));
    CHECK(back[0].seconds == doctest::Approx(30.5));
    std::ofstream(path) << "epoch,train_loss,test_accuracy,seconds\n1;2;3;4\n";
    CHECK_THROWS_WITH_AS(nn::read_curve_csv(path), doctest::Contains("malformed row"), std::runtime_error);
    std::ofstream(path) << "something else\n";
    CHECK_THROWS_WITH_AS(nn::read_curve_csv(path), doctest::Contains("bad header"), std::runtime_error);
    std::remove(path.c_str());
}

TEST_CASE("the SVG plot has axes, two curves with a marker per epoch, and a legend") {
    const std::vector<nn::EpochRecord> curve = {{1, 0.5, 0.88, 30}, {2, 0.3, 0.9, 30}, {3, 0.25, 0.91, 30}};
    const std::string path = "tapegrad_test_curve.svg";
    nn::write_curve_svg(path, curve, "loss & accuracy");
    const std::string svg = slurp(path);
    std::remove(path.c_str());
    CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK(svg.find("</svg>") != std::string::npos);
    CHECK(count(svg, "<polyline") == 2);
    CHECK(count(svg, "<circle") == 6);
    CHECK(svg.find("loss &amp; accuracy") != std::string::npos);
    CHECK(svg.find(">epoch</text>") != std::string::npos);
    CHECK(svg.find("training loss (left axis)") != std::string::npos);
    CHECK(svg.find("test accuracy (right axis)") != std::string::npos);
    // An empty curve still gives a valid, empty plot.
    nn::write_curve_svg(path, {}, "empty");
    CHECK(slurp(path).find("</svg>") != std::string::npos);
    std::remove(path.c_str());
}
