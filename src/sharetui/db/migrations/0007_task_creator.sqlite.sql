ALTER TABLE "tasks" ADD COLUMN "created_by_id" INTEGER REFERENCES "users" ("id");
