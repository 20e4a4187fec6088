"""The Slack listener for `/gemini-check`: acknowledge at once, let the answer service work, answer through
the response URL. Parsing, limits, checks and recording are the service's (`bot.service`)."""

from __future__ import annotations

from bot import blocks
from bot.chat_command import COMMAND
from bot.service import AnswerService, Context


def register(app, service: AnswerService) -> None:
    """Add the `/gemini-check` listener to a bolt App."""

    @app.command(COMMAND)
    def on_command(ack, command, respond):
        user, channel = command.get("user_id", ""), command.get("channel_id")
        ctx = Context("slash", user=user, channel=channel)

        def running(notice: str) -> None:
            ack(**blocks.notice_message(notice).kwargs())

        reply = service.run_command(command.get("text", ""), user, ctx, on_start=running)
        message = blocks.reply_message(reply, service.kb, requested_by=user if reply.share else None)
        visibility = "in_channel" if reply.share else "ephemeral"
        if reply.started:
            respond(response_type=visibility, replace_original=False, **message.kwargs())
        elif reply.kind in ("list", "entry", "answer"):  # fast (milliseconds): the answer is the acknowledgement
            ack(response_type=visibility, **message.kwargs())
        else:
            ack(**message.kwargs())
