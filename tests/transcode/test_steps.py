"""The pipeline's steps: the task names queued messages carry, and the queue of each."""

from __future__ import annotations

from transcode import pipeline
from transcode.steps import INGEST, QUEUES, TRANSCODE, Step


def test_task_names_are_those_queued_messages_carry() -> None:
    # Written out, not derived: a message queued by the previous release names one of these,
    # and a renamed step would leave it with no task to run it.
    assert [step.task for step in Step] == [
        "evidence.hash_original",
        "evidence.probe_original",
        "evidence.validate_media",
        "evidence.make_proxy",
        "evidence.make_stills",
        "evidence.make_hls",
        "evidence.make_thumbnail",
        "evidence.make_manifest",
        "evidence.make_view",
        "evidence.make_audio",
        "evidence.make_text",
        "evidence.make_pages",
        "evidence.make_previews",
        "evidence.finish_item",
    ]


def test_decoding_video_goes_to_the_transcode_queue_and_the_rest_to_ingest() -> None:
    assert QUEUES == ("ingest", "transcode")
    on_transcode = {step for step in Step if step.queue == TRANSCODE}
    assert on_transcode == {Step.VALIDATE_MEDIA, Step.MAKE_PROXY, Step.MAKE_STILLS, Step.MAKE_HLS, Step.MAKE_AUDIO,
                            Step.MAKE_PAGES, Step.MAKE_PREVIEWS}
    assert all(step.queue == INGEST for step in set(Step) - on_transcode)


def test_a_step_is_its_name_wherever_a_string_is_expected() -> None:
    assert Step("make_proxy") is Step.MAKE_PROXY
    assert Step.MAKE_PROXY == "make_proxy" and f"{Step.MAKE_PROXY}" == "make_proxy"
    assert {"make_proxy": 1}[Step.MAKE_PROXY] == 1


def test_every_planned_step_is_a_step_of_the_pipeline() -> None:
    planned = {step for steps in pipeline.PLAN.values() for step in steps}
    assert planned | {Step.MAKE_HLS} <= set(Step) - {Step.HASH_ORIGINAL, Step.PROBE_ORIGINAL, Step.FINISH_ITEM}
    for step in Step:
        assert callable(getattr(pipeline, step.value)), step
