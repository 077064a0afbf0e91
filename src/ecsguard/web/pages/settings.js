/* Settings: test sends and user management (admin); the server re-checks every role. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { el, fill, post } = ecsguard;
  const failed = (node, err) => fill(node, el("span", { class: "error" }, err.message));
  const resultOf = (button) => button.parentElement.querySelector(".settings-result");

  for (const button of document.querySelectorAll("button.test-send")) {
    button.addEventListener("click", async () => {
      const out = resultOf(button);
      button.disabled = true;
      fill(out, "…");
      try {
        const answer = await post("/settings/test-send", { channel: button.dataset.channel });
        fill(out, answer.ok
          ? el("span", { class: "state-OK" }, button.dataset.sent.replace("{seconds}", answer.seconds))
          : el("span", { class: "error" }, answer.error));
      } catch (err) { failed(out, err); }
      button.disabled = false;
    });
  }

  for (const button of document.querySelectorAll("button.set-role")) {
    button.addEventListener("click", async () => {
      const role = button.parentElement.querySelector("select.user-role").value;
      try {
        await post("/settings/users/role", { name: button.dataset.user, role });
        window.location.reload();
      } catch (err) { failed(resultOf(button.closest("tr").querySelector(".remove-user")), err); }
    });
  }

  for (const button of document.querySelectorAll("button.remove-user")) {
    button.addEventListener("click", async () => {
      try {
        await post("/settings/users/remove", { name: button.dataset.user });
        window.location.reload();
      } catch (err) { failed(resultOf(button), err); }
    });
  }

  const form = document.getElementById("add-user");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = new FormData(form);
      try {
        await post("/settings/users/add", {
          name: fields.get("name"), role: fields.get("role"), password: fields.get("password"),
        });
        window.location.reload();
      } catch (err) { failed(document.getElementById("add-user-status"), err); }
    });
  }
});
