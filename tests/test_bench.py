"""fer-edge bench: timing statistics, the JSON schema, Markdown, plots, and real runs of the CLI."""
import json

import numpy as np
import pytest

from fer_edge.bench import report
from fer_edge.bench.machine import cpu_info
from fer_edge.bench.runner import Target
from fer_edge.bench.timing import LatencyStats, measure
from fer_edge.cli.main import main


def test_latency_stats_by_hand():
    s = LatencyStats.from_samples(4, [0.001, 0.002, 0.003, 0.004, 0.010])
    assert (s.min_ms, s.p50_ms, s.max_ms) == pytest.approx((1.0, 3.0, 10.0))
    assert s.p90_ms == pytest.approx(7.6)  # linear interpolation between 4 and 10 ms
    assert s.mean_ms == pytest.approx(4.0)
    assert s.throughput == pytest.approx(4 / 0.003)


def test_measure_keeps_warmup_apart_and_bounds_time():
    calls = []
    stats = measure(lambda: calls.append(1), batch=1, warmup=3, runs=7)
    assert len(calls) == 10 and stats.runs == 7
    stats = measure(lambda: None, batch=1, warmup=0, runs=10_000, max_seconds=0.0)
    assert stats.runs == 5  # stops at the bound, keeping the minimum of 5 samples


def test_target_parsing():
    t = Target.parse("model.onnx@openvino")
    assert (t.path, t.backend) == ("model.onnx", "openvino")
    assert Target.parse("default").backend is None


def test_cpu_flags_from_cpuinfo():
    text = "processor : 0\nmodel name : Test CPU 9000\nflags : fpu avx2 avx512_vnni amx_tile sse4_2\n"
    info = cpu_info(text)
    assert info["model"] == "Test CPU 9000"
    assert info["isa"] == ["amx_tile", "avx2", "avx512_vnni"]


def _row(**kw):
    row = {k: None for k in report.ROW_KEYS}
    row.update(artifact="a.onnx", method="m", backend="onnxruntime", device="cpu", format="onnx",
               precision="fp32", latency=[LatencyStats.from_samples(1, [0.001, 0.002]).to_dict()], input="synthetic")
    row.update(kw)
    return row


def test_schema_validation_catches_bad_documents():
    doc = report.document({"cpu": {}}, {"warmup": 1, "runs": 2}, [_row()])
    report.validate(doc)
    with pytest.raises(ValueError, match="lacks"):
        report.document({}, {}, [{"artifact": "x"}])
    bad = json.loads(json.dumps(doc))
    bad["rows"][0]["latency"][0]["p50_ms"] = 99.0
    with pytest.raises(ValueError, match="out of order"):
        report.validate(bad)
    with pytest.raises(ValueError, match="not a fer-edge"):
        report.validate({"schema": "other"})


def test_markdown_footnotes_precision_notes():
    doc = report.document({"cpu": {"model": "X"}}, {"warmup": 1, "runs": 2},
                          [_row(precision_note="runs in bf16"), _row(artifact="b.xml", precision_note="runs in bf16")])
    md = report.markdown(doc)
    assert md.count("fp32 [1]") == 2 and "[1] runs in bf16" in md


def test_bench_cli_on_real_faces(tmp_path, shared_data):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    code = main(["bench", "default", "--backends", "onnxruntime,openvino", "--reference",
                 "--data", "fer2013:public_test", "--limit", "200", "--batch", "1,4", "--runs", "5",
                 "--warmup", "1", "--threads", "1", "--json", str(out), "--markdown", str(md),
                 "--plots", str(tmp_path / "plots")])
    assert code == 0
    doc = json.loads(out.read_text())
    report.validate(doc)
    rows = {r["backend"]: r for r in doc["rows"]}
    assert set(rows) == {"torch", "onnxruntime", "openvino"} and rows["torch"]["reference"]
    for r in doc["rows"]:
        assert [x["batch"] for x in r["latency"]] == [1, 4]
        assert r["input"] == "real faces" and r["size_mb"] > 0
        assert r["accuracy"]["n"] == 200 and 0.4 < r["accuracy"]["accuracy"] < 0.9  # mini-Xception ~65%
        assert r["agreement"] >= 0.97  # every FP32 backend agrees with the PyTorch reference
    assert rows["torch"]["speedup_vs_reference"] == 1.0
    assert doc["machine"]["cpu"]["logical_cores"] >= 1 and "onnxruntime" in doc["machine"]["versions"]
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert "latency_vs_batch.png" in pngs and "accuracy_vs_latency.png" in pngs
    assert sum(p.startswith("confusion_") for p in pngs) == 3
    assert "| default@openvino |" in md.read_text()


def test_bench_pipeline_mode_on_a_short_clip(tmp_path, sample_video):
    out = tmp_path / "pipe.json"
    assert main(["bench", "--pipeline", "--source", str(sample_video), "--max-frames", "4",
                 "--json", str(out)]) == 0
    pipe = json.loads(out.read_text())["pipeline"]
    assert pipe["frames"] == 4 and pipe["fps"] > 0
    assert set(pipe["stages_ms"]) == {"decode", "detect", "align", "classify", "track_smooth"}
    assert all(v >= 0 for v in pipe["stages_ms"].values()) and pipe["stages_ms"]["detect"] > 0


def test_bench_errors_are_one_line(capsys):
    assert main(["bench"]) == 2
    assert "name at least one artifact" in capsys.readouterr().err
    assert main(["bench", "default", "--batch", "0"]) == 2
    assert main(["bench", "missing.onnx"]) == 2
    assert "not found" in capsys.readouterr().err


def test_tegrastats_power_parsing():
    from fer_edge.bench.energy import input_power_mw

    orin = ("11-22-2026 10:00:00 RAM 2950/7620MB CPU [3%@729,2%@729] GR3D_FREQ 0% cpu@47C "
            "VDD_IN 5076mW/5100mW VDD_CPU_GPU_CV 612mW/640mW VDD_SOC 1432mW/1440mW")
    nano = "RAM 1500/3964MB CPU [10%@1479] GPU 0% POM_5V_IN 3154/3154 POM_5V_GPU 40/40 POM_5V_CPU 724/724"
    assert input_power_mw(orin) == 5076.0  # total input rail, not the CPU/GPU rail
    assert input_power_mw(nano) == 3154.0
    assert input_power_mw("RAM 1500/3964MB CPU [10%@1479]") is None


def test_power_sampler_energy_from_fake_tegrastats(tmp_path, monkeypatch):
    from fer_edge.bench.energy import PowerSampler

    fake = tmp_path / "tegrastats"
    fake.write_text("#!/bin/sh\nwhile true; do echo 'RAM 1/2MB VDD_IN 4000mW/4000mW'; sleep 0.02; done\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    with PowerSampler(interval_ms=20) as p:
        __import__("time").sleep(0.3)
    assert p.available and p.samples and p.mean_mw == 4000.0
    # 4 W for ~0.3 s over 100 items: ~12 mJ each
    assert p.millijoules_per_item(100) == pytest.approx(4000.0 * p.seconds / 100)
    assert PowerSampler(command="no-such-tegrastats").available is False
