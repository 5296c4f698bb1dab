CREATE INDEX "history_at_id" ON "history" ("at", "id");
